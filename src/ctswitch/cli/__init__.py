"""ctswitch.cli"""

"""ctswitch.daemon"""

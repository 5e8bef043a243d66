"""ctswitch.io"""

"""ctswitch.control"""

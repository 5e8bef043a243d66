"""ctswitch.offload"""

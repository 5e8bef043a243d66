"""ctswitch.datapath"""

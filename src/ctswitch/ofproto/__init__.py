"""ctswitch.ofproto"""

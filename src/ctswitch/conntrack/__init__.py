"""ctswitch.conntrack"""

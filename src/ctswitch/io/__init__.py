"""ctswitch.io: adapters between the pure core and the outside world (pcap files, replay)."""

"""Import: turn traffic captured elsewhere (GoReplay files, pcap) into envelopes."""

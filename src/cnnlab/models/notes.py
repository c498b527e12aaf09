"""The course notes' own networks (seeds 000-004), written as cnnlab specs."""

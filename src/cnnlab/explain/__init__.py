"""cnnlab.explain"""

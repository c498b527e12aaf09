"""cnnlab.spec"""

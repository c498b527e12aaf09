"""cnnlab.serve"""

"""cnnlab.ops"""

"""cnnlab.nn"""

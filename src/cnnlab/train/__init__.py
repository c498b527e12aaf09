"""cnnlab.train"""

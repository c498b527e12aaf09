"""cnnlab.report"""

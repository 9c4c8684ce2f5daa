"""chainrule"""

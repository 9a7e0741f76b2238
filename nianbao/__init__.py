"""nianbao command line and service entry points (``nianbao extract|serve|worker|archive|export|report``)."""
__version__ = "0.1.0"
EXTRACTOR_VERSION = "1"

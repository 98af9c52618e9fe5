"""Cross-camera association (step 4): one global identity per person across cameras."""

"""Filesystem-changing build steps: ``run`` (RUN in a container) and ``copy`` (COPY/ADD)."""

"""The kernel seam: the only package that makes Linux-specific system calls.

Modules are small and import only what they need, because the OCI runtime imports them on
every container start: ``syscalls`` (libc wrappers through ``_ctypes`` that name the syscall
and its arguments in their errors; also loopback-up and setrlimit), ``mountopts`` (mount
option strings to flags), ``rootfs`` (mounts, devices, pivot_root, masked and read-only
paths), ``cgroups`` (v1 and v2 file I/O), ``caps`` (capability sets), ``seccomp`` (OCI seccomp
JSON to a libseccomp filter, libseccomp called through ``_ctypes``), ``console`` (the pty and
the console-socket protocol), ``procfs`` (sysctls, oom_score_adj).
"""

"""Volumes: named and anonymous volumes of the local driver, bind mounts and tmpfs for containers.

The engine uses one :class:`~dockyard.volumes.service.VolumeService` (synchronous,
thread-safe; call it from a worker thread) rooted at ``<data-root>/volumes``::

    from dockyard.volumes import oci, spec
    from dockyard.volumes.service import VolumeService
    vols = VolumeService(data_root / "volumes", in_use=containers_using)  # name -> [ids]
    vols.reconcile(live_container_ids)                   # daemon start

    # docker volume create/ls/inspect/rm/prune  (api/volumes.py)
    vols.create(name, driver="local", driver_opts={...}, labels={...}) -> Volume
    vols.get(name); vols.list(filters); vols.remove(name, force); vols.prune(filters)
    vols.usage(name) -> Usage(size, ref_count)           # system df

    # container create: every mount input -> plans, volumes made (anonymous ones named)
    plans = spec.plan_mounts(body["HostConfig"], config_and_image_volumes,
                             volumes_from=lambda ref: plans_of(ref))
    plans = vols.prepare(plans, cid)                     # keep them in the container record
    # container start (rootfs mounted): mount volumes, copy-up, bind sources
    live = vols.mount_all(plans, cid, rootfs)
    host_config["ExtraMounts"] = oci.oci_mounts(live)    # bind/tmpfs entries of the OCI spec
    # container stop/exit: vols.unmount_all(plans, cid)
    # docker rm -v / run --rm (after the record is gone): vols.remove_anonymous(plans)

Modules: ``model`` (Volume, Usage, MountPlan), ``spec`` (Binds/Mounts/Tmpfs/VolumesFrom/
VOLUME -> plans, docker's messages), ``oci`` (plans -> OCI mounts), ``service`` (records,
refcounted mounting, prune), ``local`` (the local driver's type/o/device options and mount),
``copyup`` (image content into an empty volume, never following links out of the rootfs).
On-disk layout: see :mod:`dockyard.volumes.service`.
"""

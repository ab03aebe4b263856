# nooelint: oelint.var.suggestedvar.CVE_PRODUCT - an image recipe ships no code of its own to match CVEs against
SUMMARY = "thyroid-edge appliance image"
DESCRIPTION = "A minimal systemd image with a read-only root that boots into the thyroid-edge daemon."
# nooelint: oelint.vars.homepageping - CI has no route to the project's web site; the URL is not fetched at build time
HOMEPAGE = "https://github.com/thyroid-edge/thyroid-edge"
BUGTRACKER = "https://github.com/thyroid-edge/thyroid-edge/issues"
SECTION = "images"
LICENSE = "MIT"

REQUIRED_DISTRO_FEATURES = "systemd"

inherit core-image features_check

IMAGE_INSTALL:append = " packagegroup-thyroid-edge"
IMAGE_FEATURES:append = " read-only-rootfs"

# The data partition (wic/thyroid-edge-qemuarm64.wks) mounts at /data: the read-only root needs the mount point
# built in. The daemon's state and this box's settings live there (thyroid-edge's 20-data-partition.conf).
create_data_mountpoint() {
    install -d -m 0755 ${IMAGE_ROOTFS}/data
}
create_data_mountpoint[doc] = "Creates /data, the data partition's mount point, in the read-only root file system"
ROOTFS_POSTPROCESS_COMMAND += "create_data_mountpoint"

# nooelint: oelint.var.bbclassextend - target-only appliance software, no native or nativesdk use
SUMMARY = "thyroid-edge: ultrasound capture, INT8 thyroid-nodule segmentation, MQTT"
DESCRIPTION = "Daemon that segments thyroid nodules in the video of an ultrasound machine \
               with onnxruntime and publishes masks and alerts over MQTT."
# nooelint: oelint.vars.homepageping - CI has no route to the project's web site; the URL is not fetched at build time
HOMEPAGE = "https://github.com/thyroid-edge/thyroid-edge"
BUGTRACKER = "https://github.com/thyroid-edge/thyroid-edge/issues"
SECTION = "multimedia"
LICENSE = "CLOSED"
CVE_PRODUCT = "thyroid-edge"

# A release tarball rather than the npm fetcher with an npmsw shrinkwrap: onnxruntime-node and
# sharp ship prebuilt N-API binaries, which the npm fetcher cannot rebuild (onnxruntime is not a
# node-gyp build) and would only re-download with less control. deploy/yocto/make-release.sh
# builds the tarball from the same `npm ci --cpu=arm64` tree the ARM64 proof ran under qemu,
# pruned to linux-arm64, with a SHA256SUMS file beside it.
SRC_URI = "file://${THYROID_EDGE_RELEASE_DIR}/thyroid-edge-${PV}-linux-arm64.tar.gz;subdir=${BP} \
           file://10-static-user.conf \
           file://20-data-partition.conf \
           file://thyroid-edge-data.conf \
           file://config.yaml \
           "

S = "${WORKDIR}/${BP}"

inherit systemd useradd

COMPATIBLE_HOST = "aarch64.*-linux"

USERADD_PACKAGES = "${PN}"
# Fixed ids: the state on the data partition (0600 files, UMask=0077) outlives image updates, and a later image
# that allocated another uid would leave the daemon unable to read its own outbox and slots.
GROUPADD_PARAM:${PN} = "--system --gid 847 thyroid-edge"
USERADD_PARAM:${PN} = "--system --uid 847 --gid thyroid-edge --no-create-home --home-dir /data/thyroid-edge --shell /sbin/nologin --groups video thyroid-edge"

SYSTEMD_SERVICE:${PN} = "thyroid-edge.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${libdir}/thyroid-edge
    cp -R --no-preserve=ownership ${S}/dist ${S}/node_modules ${S}/package.json ${S}/docs ${D}${libdir}/thyroid-edge/
    install -d ${D}${systemd_system_unitdir}/thyroid-edge.service.d
    install -m 0644 ${S}/deploy/systemd/thyroid-edge.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${WORKDIR}/10-static-user.conf ${D}${systemd_system_unitdir}/thyroid-edge.service.d/
    install -m 0644 ${WORKDIR}/20-data-partition.conf ${D}${systemd_system_unitdir}/thyroid-edge.service.d/
    install -d ${D}${nonarch_libdir}/tmpfiles.d
    install -m 0644 ${WORKDIR}/thyroid-edge-data.conf ${D}${nonarch_libdir}/tmpfiles.d/
    install -d ${D}${sysconfdir}/thyroid-edge
    install -m 0640 ${WORKDIR}/config.yaml ${D}${sysconfdir}/thyroid-edge/config.yaml
    # the service runs as the recipe's user (10-static-user.conf): it must be able to read its config
    chown root:thyroid-edge ${D}${sysconfdir}/thyroid-edge/config.yaml
}

FILES:${PN} += "${systemd_system_unitdir}/thyroid-edge.service.d ${nonarch_libdir}/tmpfiles.d"
CONFFILES:${PN} = "${sysconfdir}/thyroid-edge/config.yaml"

RDEPENDS:${PN} = "ffmpeg libstdc++ nodejs systemd thyroid-edge-model"

# The N-API binaries (onnxruntime, libvips) come stripped from their vendors: nothing to strip or split.
INHIBIT_PACKAGE_STRIP = "1"
INHIBIT_PACKAGE_DEBUG_SPLIT = "1"

# nooelint: oelint.var.bbclassextend - data for the target image only, no native or nativesdk use
SUMMARY = "thyroid-edge INT8 thyroid-nodule segmentation model and its model card"
DESCRIPTION = "The factory model of thyroid-edge, in its own package so it updates independently \
               of the daemon; signed fleet bundles install newer models into the state directory \
               and this package stays the fallback."
# nooelint: oelint.vars.homepageping - CI has no route to the project's web site; the URL is not fetched at build time
HOMEPAGE = "https://github.com/thyroid-edge/thyroid-edge"
BUGTRACKER = "https://github.com/thyroid-edge/thyroid-edge/issues"
SECTION = "multimedia"
LICENSE = "CLOSED"
CVE_PRODUCT = "thyroid-edge"

# the model and its card, copied beside the release tarball by make-release.sh (sha256 in the card)
SRC_URI = "file://${THYROID_EDGE_RELEASE_DIR}/thyroid-nodule-int8.onnx \
           file://${THYROID_EDGE_RELEASE_DIR}/thyroid-nodule-int8.json \
           "

S = "${WORKDIR}"

inherit allarch

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${datadir}/thyroid-edge/models
    install -m 0644 ${WORKDIR}/thyroid-nodule-int8.onnx ${WORKDIR}/thyroid-nodule-int8.json ${D}${datadir}/thyroid-edge/models/
}

FILES:${PN} += "${datadir}/thyroid-edge/models"

SUMMARY = "thyroid-edge appliance: daemon, model and field tools"
DESCRIPTION = "Everything a thyroid-edge box runs: the daemon with its model, ffmpeg for capture, \
               and v4l-utils to check the capture dongle."
# nooelint: oelint.vars.homepageping - CI has no route to the project's web site; the URL is not fetched at build time
HOMEPAGE = "https://github.com/thyroid-edge/thyroid-edge"
BUGTRACKER = "https://github.com/thyroid-edge/thyroid-edge/issues"
SECTION = "multimedia"
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = "ffmpeg thyroid-edge thyroid-edge-model v4l-utils"

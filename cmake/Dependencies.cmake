# Finds every external library through pkg-config and names the Debian
# package to install when one is missing.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
    message(FATAL_ERROR "pkg-config not found: apt-get install -y pkg-config")
endif()

function(ds_require_pkg target module debian_pkg)
    pkg_check_modules(${target} QUIET IMPORTED_TARGET ${module})
    if(NOT ${target}_FOUND)
        message(FATAL_ERROR "${module} not found via pkg-config: "
                            "apt-get install -y ${debian_pkg}")
    endif()
    message(STATUS "found ${module} ${${target}_VERSION}")
endfunction()

ds_require_pkg(ZMQ libzmq libzmq3-dev)
ds_require_pkg(CZMQ libczmq libczmq-dev)
ds_require_pkg(LMDB lmdb liblmdb-dev)
ds_require_pkg(MSGPACK msgpack libmsgpack-dev)
ds_require_pkg(CMOCKA cmocka libcmocka-dev)
ds_require_pkg(FYAML libfyaml libfyaml-dev)
# dsworker: artifact downloads, .tar.gz unpacking, sha256 checks.
ds_require_pkg(CURL libcurl libcurl4-openssl-dev)
ds_require_pkg(ARCHIVE libarchive libarchive-dev)
ds_require_pkg(CRYPTO libcrypto libssl-dev)

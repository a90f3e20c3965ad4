# packaging/install.cmake: what `cmake --install` puts where (the GNUInstallDirs layout), and
# the Debian packages (`cpack -G DEB` in the build folder). Included by CMakeLists.txt.
#
# Two components, made into two packages, as Debian splits a library:
#   runtime -> attn      the attn command, libattn.so.*, the shipped model, man pages, completion
#   dev     -> attn-dev  headers, libattn.a, the libattn.so link, attn.pc, the CMake package
# `cmake --install build --prefix DIR` installs both; every path is relative to DIR, and
# attn.pc and the CMake package find DIR from where they lie, so the tree may be moved.

# The SONAME follows the API version (ATTN_VERSION_STRING): from 1.0 on, the major version
# (libattn.so.1); before 1.0, when any minor version may break the API, major.minor
# (libattn.so.0.1). find_package(attn 0.1) accepts the same range.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(ATTN_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  set(ATTN_COMPATIBILITY SameMinorVersion)
else()
  set(ATTN_SOVERSION ${PROJECT_VERSION_MAJOR})
  set(ATTN_COMPATIBILITY SameMajorVersion)
endif()
set_target_properties(attn_shared PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${ATTN_SOVERSION}
                                             EXPORT_NAME attn)
set_target_properties(attn_static PROPERTIES EXPORT_NAME attn_static)

set(ATTN_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/attn)
set(ATTN_DATADIR ${CMAKE_INSTALL_DATADIR}/attn)

install(TARGETS attn RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(TARGETS attn_shared attn_static EXPORT attnTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY include/attn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# attn.pc: relocatable, prefix=${pcfiledir}/../.. (as many levels as the libdir has), unless
# the libdir or includedir was given as an absolute path.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(ATTN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(ATTN_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(ATTN_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH ATTN_PC_UP "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" ATTN_PC_UP "${ATTN_PC_UP}")
  set(ATTN_PC_PREFIX "\${pcfiledir}/${ATTN_PC_UP}")
  set(ATTN_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(ATTN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(packaging/attn.pc.in ${CMAKE_BINARY_DIR}/attn.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/attn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# find_package(attn): attn::attn (the shared library) and attn::attn_static. A new dependency
# of the static library (ATTN_LINK_LIBS) needs its find_dependency in attnConfig.cmake.in, its
# pkg-config name in ATTN_PC_REQUIRES and its -dev package in attn-dev's Depends below;
# tests/install.sh fails without the first two.
include(CMakePackageConfigHelpers)
configure_package_config_file(packaging/attnConfig.cmake.in ${CMAKE_BINARY_DIR}/attnConfig.cmake
                              INSTALL_DESTINATION ${ATTN_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/attnConfigVersion.cmake
                                 COMPATIBILITY ${ATTN_COMPATIBILITY})
install(EXPORT attnTargets NAMESPACE attn:: DESTINATION ${ATTN_CMAKEDIR} COMPONENT dev)
install(FILES ${CMAKE_BINARY_DIR}/attnConfig.cmake ${CMAKE_BINARY_DIR}/attnConfigVersion.cmake
        DESTINATION ${ATTN_CMAKEDIR} COMPONENT dev)

# The shipped model, with its provenance, and the bash completion.
install(DIRECTORY models/zh-en-small DESTINATION ${ATTN_DATADIR}/models COMPONENT runtime)
install(FILES models/README.md DESTINATION ${ATTN_DATADIR}/models COMPONENT runtime)
install(FILES packaging/attn.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME attn COMPONENT runtime)

# Man pages: made from the command's own --help by help2man (packaging/gen-man.sh) whenever
# the command is relinked.
find_program(ATTN_HELP2MAN help2man)
if(ATTN_HELP2MAN AND NOT CMAKE_CROSSCOMPILING)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/man1/attn.1.gz
                     COMMAND bash ${CMAKE_SOURCE_DIR}/packaging/gen-man.sh $<TARGET_FILE:attn>
                             ${CMAKE_BINARY_DIR}/man/man1 ${ATTN_HELP2MAN}
                     DEPENDS attn ${CMAKE_SOURCE_DIR}/packaging/gen-man.sh
                             ${CMAKE_SOURCE_DIR}/packaging/attn.bash VERBATIM)
  add_custom_target(attn_man ALL DEPENDS ${CMAKE_BINARY_DIR}/man/man1/attn.1.gz)
  install(DIRECTORY ${CMAKE_BINARY_DIR}/man/man1 DESTINATION ${CMAKE_INSTALL_MANDIR} COMPONENT runtime)
else()
  message(STATUS "help2man not found: no man pages (tools/install-deps.sh installs it)")
endif()

# The Debian packages: dependencies of attn from dpkg-shlibdeps, a shlibs file and the
# ldconfig calls for libattn.so; attn-dev needs the -dev packages of attn.pc's
# Requires.private (pkg-config reads them even for --cflags).
set(CPACK_PACKAGE_NAME attn)
set(CPACK_PACKAGE_CONTACT "attn developers <attn@localhost>" CACHE STRING "Maintainer of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME attn)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION science)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "the attention mechanism in C: the attn command and library
Every form of attention, forward and backward, and the models built on it: the attn
command (explain, attend, mha, train, translate, classify, eval, memory, bench), the
shared library libattn and a small Chinese to English translator with attention
(/usr/share/attn/models/zh-en-small).")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME attn-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "attn (= ${PROJECT_VERSION})")
if(ATTN_PNGDEPS_FOUND)
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", libpng-dev, libfreetype-dev, libfontconfig-dev")
endif()
if(ATTN_ZLIBDEPS_FOUND)
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", zlib1g-dev")
endif()
if(ATTN_MPIDEPS_FOUND)
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", libopenmpi-dev")
endif()
set(CPACK_COMPONENT_DEV_DESCRIPTION "the attention mechanism in C: headers and static library
The headers (attn/attn.h), libattn.a, attn.pc for pkg-config and the CMake package
(find_package(attn), target attn::attn) for building programs with libattn.")
include(CPack)

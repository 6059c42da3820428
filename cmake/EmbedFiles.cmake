# townhall_embed_files(TARGET <lib> NAMESPACE <ns> FUNCTION <fn> BASE_DIR <dir> FILES <f...>)
# Generates a C++ source defining
#   std::span<const townhall::EmbeddedFile> <ns>::<fn>()
# that returns every file (path relative to BASE_DIR, contents as bytes), sorted by path.
# The generated file is rebuilt whenever one of the inputs changes.
function(townhall_embed_files)
  cmake_parse_arguments(ARG "" "TARGET;NAMESPACE;FUNCTION;BASE_DIR" "FILES" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_FUNCTION}_embedded.cpp")
  list(SORT ARG_FILES)
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNAMESPACE=${ARG_NAMESPACE} -DFUNCTION=${ARG_FUNCTION}
            -DBASE_DIR=${ARG_BASE_DIR} "-DFILES=${ARG_FILES}"
            -P "${PROJECT_SOURCE_DIR}/cmake/EmbedFilesScript.cmake"
    DEPENDS ${ARG_FILES} "${PROJECT_SOURCE_DIR}/cmake/EmbedFilesScript.cmake"
    COMMENT "Embedding ${ARG_FUNCTION}"
    VERBATIM)
  target_sources(${ARG_TARGET} PRIVATE "${out}")
  # Data only, with the same names in every generated file: compiled on its own.
  set_source_files_properties("${out}" PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endfunction()

# CMake package config of onnx2src: find_package(onnx2src CONFIG REQUIRED) with
# -Donnx2src_DIR="$(onnx2src --cmake-dir)" defines onnx2src_add_model(), which generates C from an
# ONNX model at build time and wraps it in a static library. The generation runs in the Python
# environment this file is installed in, found at configure time as described below.
#
#   onnx2src_add_model(<lib> MODEL <model.onnx> [NAME <name>] [MAX_DIMS <dim>=<n>...]
#                      [OPTIONS <onnx2src flag>...] [DEPENDS <file>...])
#
# MODEL is relative to the current source folder. NAME (default: the model file's stem) prefixes
# the C symbols and names <name>.h, <name>.c and <name>_weights.c (or, with OPTIONS --weights-file,
# <name>.weights, which the program loads at run time), written to
# ${CMAKE_CURRENT_BINARY_DIR}/onnx2src-out/<lib>; <lib>'s include directories carry that folder, so
# `#include "<name>.h"` works in whatever links <lib>. MAX_DIMS become --max-dim flags, OPTIONS are
# passed as they are (--approx-activations, --stream, --const x=1, --fix-dim d=n). The code is
# regenerated when the model, its external-data files (found by depfile.py after each run),
# a DEPENDS file, or the options (or, after a re-configure, the onnx2src version) change, and
# only then.
#
# Which Python: ONNX2SRC_PYTHON if set (cache variable); otherwise the first of these whose
# `import onnx2src` is the package holding this very file: the interpreter of the environment
# this file is installed in (<prefix>/bin/python3, <prefix>/Scripts/python.exe), the active
# virtualenv's or conda environment's (VIRTUAL_ENV, CONDA_PREFIX), Python3_EXECUTABLE, then
# python3 / python on PATH. Configuring fails with a message naming the candidates if none is.

if(CMAKE_VERSION VERSION_LESS 3.20)
  set(onnx2src_FOUND FALSE)
  set(onnx2src_NOT_FOUND_MESSAGE "onnx2src_add_model needs CMake 3.20 or newer (DEPFILE with the Makefile generators); this is ${CMAKE_VERSION}")
  return()
endif()

cmake_policy(PUSH)
cmake_policy(VERSION 3.20...3.31)

get_filename_component(_onnx2src_package "${CMAKE_CURRENT_LIST_DIR}/.." REALPATH)
set(_onnx2src_cmake_dir "${CMAKE_CURRENT_LIST_DIR}")

# Prints the folder of the onnx2src package `python` imports, and its version, on two lines.
set(_onnx2src_probe "import os, onnx2src; print(os.path.dirname(os.path.realpath(onnx2src.__file__))); print(onnx2src.__version__)")

# Sets `out` to the version of onnx2src if `python` imports the package this file belongs to.
function(_onnx2src_probe_python python out)
  set(${out} "" PARENT_SCOPE)
  if(NOT python OR NOT EXISTS "${python}")
    return()
  endif()
  execute_process(COMMAND "${python}" -c "${_onnx2src_probe}" WORKING_DIRECTORY "${_onnx2src_cmake_dir}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE lines ERROR_QUIET
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT status EQUAL 0)
    return()
  endif()
  string(REPLACE "\r" "" lines "${lines}")
  string(REPLACE "\n" ";" lines "${lines}")
  list(GET lines 0 folder)
  list(GET lines -1 version)
  get_filename_component(folder "${folder}" REALPATH)
  if(folder STREQUAL _onnx2src_package)
    set(${out} "${version}" PARENT_SCOPE)
  endif()
endfunction()

if(ONNX2SRC_PYTHON)
  _onnx2src_probe_python("${ONNX2SRC_PYTHON}" onnx2src_VERSION)
  if(NOT onnx2src_VERSION)
    cmake_policy(POP)
    message(FATAL_ERROR "ONNX2SRC_PYTHON=${ONNX2SRC_PYTHON} does not import the onnx2src package at "
                        "${_onnx2src_package} (the one onnx2src_DIR points into): run `<that python> "
                        "-m onnx2src --cmake-dir` and pass its output as onnx2src_DIR")
  endif()
else()
  set(_onnx2src_candidates
      "${_onnx2src_package}/../../../../bin/python3" "${_onnx2src_package}/../../../Scripts/python.exe")
  foreach(_onnx2src_env VIRTUAL_ENV CONDA_PREFIX)
    if(DEFINED ENV{${_onnx2src_env}})
      list(APPEND _onnx2src_candidates "$ENV{${_onnx2src_env}}/bin/python3" "$ENV{${_onnx2src_env}}/Scripts/python.exe"
           "$ENV{${_onnx2src_env}}/python.exe")
    endif()
  endforeach()
  list(APPEND _onnx2src_candidates "${Python3_EXECUTABLE}")
  foreach(_onnx2src_name python3 python)
    find_program(_onnx2src_on_path NAMES ${_onnx2src_name} NO_CACHE)
    list(APPEND _onnx2src_candidates "${_onnx2src_on_path}")
    unset(_onnx2src_on_path)
  endforeach()
  list(REMOVE_ITEM _onnx2src_candidates "")
  set(_onnx2src_tried "")
  foreach(_onnx2src_candidate IN LISTS _onnx2src_candidates)
    get_filename_component(_onnx2src_candidate "${_onnx2src_candidate}" ABSOLUTE)
    list(APPEND _onnx2src_tried "${_onnx2src_candidate}")
    _onnx2src_probe_python("${_onnx2src_candidate}" onnx2src_VERSION)
    if(onnx2src_VERSION)
      set(ONNX2SRC_PYTHON "${_onnx2src_candidate}" CACHE FILEPATH "The Python that runs onnx2src at build time")
      break()
    endif()
  endforeach()
  if(NOT onnx2src_VERSION)
    list(REMOVE_DUPLICATES _onnx2src_tried)
    list(JOIN _onnx2src_tried ", " _onnx2src_tried)
    cmake_policy(POP)
    message(FATAL_ERROR "found no Python that imports the onnx2src package at ${_onnx2src_package} "
                        "(tried ${_onnx2src_tried}): activate the environment onnx2src is installed "
                        "in, or pass -DONNX2SRC_PYTHON=/path/to/its/python")
  endif()
endif()
message(STATUS "onnx2src ${onnx2src_VERSION}: ${ONNX2SRC_PYTHON} -m onnx2src")

function(onnx2src_add_model lib)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "MODEL;NAME" "MAX_DIMS;OPTIONS;DEPENDS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "onnx2src_add_model(${lib}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_MODEL)
    message(FATAL_ERROR "onnx2src_add_model(${lib}): MODEL <file.onnx> is required")
  endif()
  get_filename_component(model "${arg_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${model}")
    message(FATAL_ERROR "onnx2src_add_model(${lib}): no model file ${model}")
  endif()
  set(name "${arg_NAME}")
  if(NOT name)
    get_filename_component(name "${model}" NAME_WE)
  endif()
  set(flags --target c --name "${name}")
  foreach(bound IN LISTS arg_MAX_DIMS)
    list(APPEND flags --max-dim "${bound}")
  endforeach()
  list(APPEND flags ${arg_OPTIONS})

  # (not a folder named onnx2src: Python puts the working folder first on its path)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/onnx2src-out/${lib}")
  set(sources "${dir}/${name}.c")
  if("--weights-file" IN_LIST arg_OPTIONS)
    set(weights "${dir}/${name}.weights")  # loaded by the program at run time
  else()
    list(APPEND sources "${dir}/${name}_weights.c")
    set(weights "")
  endif()
  set(outputs ${sources} "${dir}/${name}.h" ${weights})
  # A file that changes (and so regenerates the code) only when the flags or onnx2src's version
  # do: the Makefile generators, unlike Ninja, do not rerun a command because its text changed.
  string(REPLACE ";" " " options_text "onnx2src ${onnx2src_VERSION} ${flags}")
  file(CONFIGURE OUTPUT "${dir}/options.txt" CONTENT "${options_text}\n" @ONLY)

  add_custom_command(
    OUTPUT ${outputs}
    COMMAND "${ONNX2SRC_PYTHON}" -m onnx2src "${model}" -o "${dir}" ${flags}
    COMMAND "${ONNX2SRC_PYTHON}" "${_onnx2src_cmake_dir}/depfile.py" "${dir}/${name}.d" "${model}" ${outputs}
    DEPENDS "${model}" "${dir}/options.txt" ${arg_DEPENDS}
    DEPFILE "${dir}/${name}.d"
    WORKING_DIRECTORY "${dir}"
    COMMENT "onnx2src: generating ${name}.c, ${name}.h and the weights from ${arg_MODEL}"
    VERBATIM)

  add_library(${lib} STATIC ${sources} "${dir}/${name}.h")
  target_include_directories(${lib} PUBLIC "${dir}")
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST languages)
    # a C++-only project: the generated .c is valid C++ too
    set_source_files_properties(${sources} PROPERTIES LANGUAGE CXX)
  else()
    target_compile_features(${lib} PRIVATE c_std_99)
  endif()
  if(NOT MSVC)
    target_link_libraries(${lib} PRIVATE m)
  endif()
endfunction()

cmake_policy(POP)

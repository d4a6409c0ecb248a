# Shared build settings: warnings, sanitizers, and the version header.

add_library(billsync_warnings INTERFACE)
add_library(billsync::warnings ALIAS billsync_warnings)
target_compile_options(billsync_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Wnon-virtual-dtor
    $<$<BOOL:${BILLSYNC_WERROR}>:-Werror>
    # GCC 12 false positives at -O2: coroutine frames freed by Asio's awaitable_frame operator
    # delete (-Wmismatched-new-delete) and std::string inserts (-Wrestrict, GCC bug 105329).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete -Wno-restrict>)

if(BILLSYNC_SANITIZE)
    add_compile_options(-fsanitize=${BILLSYNC_SANITIZE} -fno-omit-frame-pointer
                        -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${BILLSYNC_SANITIZE})
endif()

# billsync_library(NAME SOURCES... [DEPS ...]): a static library billsync::NAME with the
# repository root as its include path and the project warnings.
function(billsync_library name)
    cmake_parse_arguments(arg "" "" "SOURCES;DEPS" ${ARGN})
    add_library(billsync_${name} STATIC ${arg_SOURCES})
    add_library(billsync::${name} ALIAS billsync_${name})
    target_include_directories(billsync_${name} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(billsync_${name} PUBLIC ${arg_DEPS} PRIVATE billsync::warnings)
endfunction()

execute_process(
    COMMAND git rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    OUTPUT_VARIABLE BILLSYNC_GIT_COMMIT
    OUTPUT_STRIP_TRAILING_WHITESPACE
    ERROR_QUIET)
if(NOT BILLSYNC_GIT_COMMIT)
    set(BILLSYNC_GIT_COMMIT "unknown")
endif()

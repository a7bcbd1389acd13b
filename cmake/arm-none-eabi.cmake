# CMake toolchain file for bare-metal Cortex-M with arm-none-eabi-gcc (newlib-nano).
#
#   cmake -S firmware -B build/fw -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake \
#         -DTE_CORE=cortex-m7 -DTE_PROJECT_DIR=out/ -DTE_BOARD=mps2-an500
#
# TE_CORE selects -mcpu/-mfpu/-mfloat-abi (the same flags as
# tinyengine_tvm.targets.cores): cortex-m4, cortex-m7 or cortex-m55.
# TE_FPU overrides the FPU (e.g. fpv5-sp-d16 for the single-precision STM32F7).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES TE_CORE TE_FPU TE_ARM_PREFIX)

set(TE_ARM_PREFIX "arm-none-eabi-" CACHE STRING "cross tool prefix")
set(TE_CORE "cortex-m7" CACHE STRING "cortex-m4 | cortex-m7 | cortex-m55")
set(TE_FPU "" CACHE STRING "-mfpu override (empty: the core's default)")

set(CMAKE_C_COMPILER ${TE_ARM_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${TE_ARM_PREFIX}g++)
set(CMAKE_ASM_COMPILER ${TE_ARM_PREFIX}gcc)
set(CMAKE_OBJCOPY ${TE_ARM_PREFIX}objcopy CACHE FILEPATH "")
set(CMAKE_SIZE ${TE_ARM_PREFIX}size CACHE FILEPATH "")

if(TE_CORE STREQUAL "cortex-m4")
  set(_te_fpu fpv4-sp-d16)
elseif(TE_CORE STREQUAL "cortex-m7")
  set(_te_fpu fpv5-d16)
elseif(TE_CORE STREQUAL "cortex-m55")
  set(_te_fpu "")  # gcc's default for -mcpu=cortex-m55: MVE with floating point
else()
  message(FATAL_ERROR "TE_CORE must be cortex-m4, cortex-m7 or cortex-m55 (got '${TE_CORE}')")
endif()
if(TE_FPU)
  set(_te_fpu ${TE_FPU})
endif()

set(TE_CPU_FLAGS "-mcpu=${TE_CORE} -mthumb -mfloat-abi=hard")
if(_te_fpu)
  string(APPEND TE_CPU_FLAGS " -mfpu=${_te_fpu}")
endif()

set(CMAKE_C_FLAGS_INIT "${TE_CPU_FLAGS} --specs=nano.specs -ffunction-sections -fdata-sections")
set(CMAKE_CXX_FLAGS_INIT "${TE_CPU_FLAGS} --specs=nano.specs -ffunction-sections -fdata-sections -fno-exceptions -fno-rtti -fno-threadsafe-statics")
set(CMAKE_ASM_FLAGS_INIT "${TE_CPU_FLAGS}")
# C flags (with --specs=nano.specs) are on the link line too.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostartfiles --specs=rdimon.specs -Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

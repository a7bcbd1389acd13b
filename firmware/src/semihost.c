/* ARM semihosting calls (bkpt 0xab) and printf-free text formatting. */
#include <string.h>

#include "te_firmware.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_FLEN 0x0C
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline int32_t te_semihost(int32_t op, const void* arg) {
  register int32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

int32_t te_sh_open(const char* path, int32_t mode) {
  const uint32_t args[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)strlen(path)};
  return te_semihost(SYS_OPEN, args);
}

int32_t te_sh_close(int32_t handle) {
  const uint32_t args[1] = {(uint32_t)handle};
  return te_semihost(SYS_CLOSE, args);
}

int32_t te_sh_flen(int32_t handle) {
  const uint32_t args[1] = {(uint32_t)handle};
  return te_semihost(SYS_FLEN, args);
}

int32_t te_sh_read(int32_t handle, void* buf, uint32_t len) {
  const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, len};
  return te_semihost(SYS_READ, args);
}

int32_t te_sh_write(int32_t handle, const void* buf, uint32_t len) {
  const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, len};
  return te_semihost(SYS_WRITE, args);
}

void te_sh_puts(const char* s) { te_semihost(SYS_WRITE0, s); }

void te_sh_exit(int32_t status) {
  const uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
  te_semihost(SYS_EXIT_EXTENDED, args);
  /* A host without SYS_EXIT_EXTENDED: plain SYS_EXIT (status 0 or 1). */
  te_semihost(SYS_EXIT, (const void*)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0x20024));
  for (;;) {
    __asm__ volatile("bkpt 0");
  }
}

void te_fmt_str(char* buf, size_t cap, size_t* pos, const char* s) {
  while (*s != '\0' && *pos + 1 < cap) buf[(*pos)++] = *s++;
  if (cap > 0) buf[*pos < cap ? *pos : cap - 1] = '\0';
}

void te_fmt_u64(char* buf, size_t cap, size_t* pos, uint64_t v) {
  char tmp[21];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v != 0u);
  char out[21];
  for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  out[n] = '\0';
  te_fmt_str(buf, cap, pos, out);
}

void te_fmt_hex32(char* buf, size_t cap, size_t* pos, uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  char out[11] = {'0', 'x'};
  for (int i = 0; i < 8; ++i) out[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
  out[10] = '\0';
  te_fmt_str(buf, cap, pos, out);
}

/* kvmrun-probe: runs inside the test guest (as /bin/kvmrun-probe, started by its init when the
 * kernel command line says kvmrun.probe=ARGS) and counts timer interrupts.
 *
 * It programs the CMOS RTC itself through ports 0x70/0x71: register A's rate selects the
 * periodic interrupt frequency (rate 6 = 1024 Hz) and register B's bit 0x40 (PIE) enables it.
 * Once a second (by the guest's CLOCK_MONOTONIC) it reads IRQ 8's count from
 * /proc/interrupts and prints one machine-readable line on the console:
 *
 *   KVMRUN-TICKS-START rate=<hz>
 *   KVMRUN-TICKS seq=<n> mono_ms=<guest monotonic ms> ticks=<irq 8 count> rate=<hz>
 *   KVMRUN-TICKS-END
 *
 * Arguments: rate=<hz> (a power of two, 2..8192) duration=<seconds>.
 * The kernel's own /dev/rtc0 periodic interface is emulated by a kernel timer and never loses a
 * tick, so it would measure nothing; the guest must run with the HPET off, or Linux routes
 * IRQ 8 away from the RTC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <time.h>

static int RateCode(int hz) {
  /* Frequency = 32768 >> (code - 1), for codes 3..15. */
  for (int code = 3; code <= 15; ++code) {
    if ((32768 >> (code - 1)) == hz) return code;
  }
  return -1;
}

static unsigned char CmosRead(unsigned char reg) {
  outb(reg, 0x70);
  return inb(0x71);
}

static void CmosWrite(unsigned char reg, unsigned char value) {
  outb(reg, 0x70);
  outb(value, 0x71);
}

/* The number of IRQ 8 interrupts on every CPU, or -1. */
static long long Irq8Count(void) {
  FILE* f = fopen("/proc/interrupts", "r");
  if (f == NULL) return -1;
  char line[1024];
  long long total = -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    char* p = line;
    while (*p == ' ') ++p;
    if (strncmp(p, "8:", 2) != 0) continue;
    p += 2;
    total = 0;
    for (;;) {
      char* end;
      const long long n = strtoll(p, &end, 10);
      if (end == p) break;
      total += n;
      p = end;
    }
    break;
  }
  fclose(f);
  return total;
}

static long long MonotonicMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char** argv) {
  int rate = 1024;
  int duration = 30;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "rate=", 5) == 0) rate = atoi(argv[i] + 5);
    if (strncmp(argv[i], "duration=", 9) == 0) duration = atoi(argv[i] + 9);
  }
  const int code = RateCode(rate);
  if (code < 0 || duration < 1) {
    printf("KVMRUN-TICKS-ERROR bad arguments: rate=%d duration=%d\n", rate, duration);
    return 2;
  }
  if (ioperm(0x70, 2, 1) != 0) {
    printf("KVMRUN-TICKS-ERROR ioperm: cannot reach the RTC ports\n");
    return 1;
  }
  CmosWrite(0x0A, (unsigned char)((CmosRead(0x0A) & 0xF0) | code));
  CmosWrite(0x0B, (unsigned char)(CmosRead(0x0B) | 0x40));
  CmosRead(0x0C); /* acknowledge anything pending */

  printf("KVMRUN-TICKS-START rate=%d\n", rate);
  fflush(stdout);
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (int seq = 0; seq <= duration; ++seq) {
    printf("KVMRUN-TICKS seq=%d mono_ms=%lld ticks=%lld rate=%d\n", seq, MonotonicMs(),
           Irq8Count(), rate);
    fflush(stdout);
    next.tv_sec += 1;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  CmosWrite(0x0B, (unsigned char)(CmosRead(0x0B) & ~0x40));
  printf("KVMRUN-TICKS-END\n");
  fflush(stdout);
  return 0;
}

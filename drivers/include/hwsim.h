/* hwsim.h: the host interface of a driver running sandboxed on hwsim.
 *
 * A driver is a WebAssembly module (built from C with `hwsim build DIR`) that
 * exports `int probe(void)`, the entry point `hwsim run` calls.  Everything it
 * needs from the machine comes through the functions below, imported from the
 * wasm module "hwsim".
 *
 * MMIO.  hwsim_mmio_map(name) maps the register window of the board device
 * `name` into the driver's own linear memory (memory 0) through page tables
 * and returns its address: ordinary `volatile` pointers then reach the device.
 * Each access reaches the device exactly once, with its width and in program
 * order.  Keep to 8-, 16- and 32-bit accesses (a 64-bit access is split in two
 * 32-bit ones by the CPU model).  Windows live at 0xF0000000 and above.
 *
 * Interrupts, two ways.  hwsim_irq_wait(name) returns 1 once the device's
 * interrupt line is raised, or 0 when nothing more can happen (console input
 * ended, the system is idle): the driver should then clean up and return.
 * Or, as a kernel driver: hwsim_request_irq(name, cookie) registers the
 * device, and hwsim calls the driver's `void hwsim_irq_handler(uint32_t
 * cookie)` whenever the device's line is high: between two instructions of
 * running driver code (which then resumes), during waits and sleeps, and after
 * probe() has returned, until input has ended and the system is idle.  Lines
 * are level-triggered: the handler must clear the device's interrupt, or it is
 * called again (1000 calls in a row are reported as an interrupt storm).
 * Handlers do not nest; do not mix both ways for one device.
 *
 * Console and time.  hwsim_log(text) writes a line to the run's log;
 * hwsim_now_ns()/hwsim_sleep_ns() read and advance virtual time.
 */
#ifndef HWSIM_H
#define HWSIM_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef unsigned long size_t;

#ifdef HWSIM_NATIVE
/* Native firmware build (hwsim build --native): the same functions, implemented by
 * firmware/hwsim_native.c with ecalls to the host; addresses are physical. */
#define HWSIM_IMPORT(name)
#define HWSIM_EXPORT(name)
#else
#define HWSIM_IMPORT(name) __attribute__((import_module("hwsim"), import_name(name)))
/* Mark a function `hwsim run --invoke NAME` may call (probe is always exported). */
#define HWSIM_EXPORT(name) __attribute__((export_name(name)))
#endif

HWSIM_IMPORT("mmio_map") void *hwsim__mmio_map(const char *name, size_t name_len);
HWSIM_IMPORT("irq_wait") int hwsim__irq_wait(const char *name, size_t name_len);
HWSIM_IMPORT("log") void hwsim__log(const char *text, size_t len);
HWSIM_IMPORT("request_irq") int hwsim__request_irq(const char *name, size_t name_len, uint32_t cookie);
HWSIM_IMPORT("free_irq") void hwsim__free_irq(const char *name, size_t name_len);
HWSIM_IMPORT("now_ns") uint64_t hwsim_now_ns(void);
HWSIM_IMPORT("sleep_ns") void hwsim_sleep_ns(uint64_t ns);

static inline size_t hwsim__strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* The register window of board device `name` (e.g. "uart0"), mapped for volatile access;
 * NULL when the device is not assigned to this driver (platform devices never are). */
static inline volatile void *hwsim_mmio_map(const char *name) {
    return (volatile void *)hwsim__mmio_map(name, hwsim__strlen(name));
}

/* Wait for the device's interrupt line: 1 when raised, 0 when the run should end. */
static inline int hwsim_irq_wait(const char *name) { return hwsim__irq_wait(name, hwsim__strlen(name)); }

/* Call hwsim_irq_handler(cookie) whenever the device's interrupt line is high; 0 on success,
 * -EPERM (-1) when the device is not assigned to this driver. */
static inline int hwsim_request_irq(const char *name, uint32_t cookie) {
    return hwsim__request_irq(name, hwsim__strlen(name), cookie);
}
static inline void hwsim_free_irq(const char *name) { hwsim__free_irq(name, hwsim__strlen(name)); }
/* The interrupt handler a driver defines when it requests IRQs. */
HWSIM_EXPORT("hwsim_irq_handler") void hwsim_irq_handler(uint32_t cookie);

static inline void hwsim_log(const char *text) { hwsim__log(text, hwsim__strlen(text)); }

/* DMA, as Linux's DMA API.  A mapping makes `size` bytes of the driver's memory at `cpu`
 * reachable by device `dev` at the returned IOVA, through the IOMMU, with the rights of
 * `dir`.  hwsim checks every use: see hwsim/driver/dma.py for the bugs it reports. */
#ifndef HWSIM_DMA_H
#define HWSIM_DMA_H
enum hwsim_dma_dir { HWSIM_DMA_BIDIRECTIONAL = 0, HWSIM_DMA_TO_DEVICE = 1, HWSIM_DMA_FROM_DEVICE = 2 };
typedef uint64_t hwsim_iova_t;
#define HWSIM_DMA_MAPPING_ERROR ((hwsim_iova_t)-1)

HWSIM_IMPORT("dma_map") hwsim_iova_t hwsim__dma_map(const char *, size_t, const void *, size_t, int);
HWSIM_IMPORT("dma_unmap") void hwsim__dma_unmap(const char *, size_t, hwsim_iova_t, size_t, int);
HWSIM_IMPORT("dma_sync_for_cpu") void hwsim__dma_sync_for_cpu(const char *, size_t, hwsim_iova_t, size_t, int);
HWSIM_IMPORT("dma_sync_for_device") void hwsim__dma_sync_for_device(const char *, size_t, hwsim_iova_t, size_t, int);
HWSIM_IMPORT("dma_alloc_coherent") void *hwsim__dma_alloc_coherent(const char *, size_t, size_t, hwsim_iova_t *);
HWSIM_IMPORT("dma_free_coherent") void hwsim__dma_free_coherent(const char *, size_t, size_t, void *, hwsim_iova_t);

static inline hwsim_iova_t hwsim_dma_map_single(const char *dev, const void *cpu, size_t size, int dir) {
    return hwsim__dma_map(dev, hwsim__strlen(dev), cpu, size, dir);
}
static inline void hwsim_dma_unmap_single(const char *dev, hwsim_iova_t iova, size_t size, int dir) {
    hwsim__dma_unmap(dev, hwsim__strlen(dev), iova, size, dir);
}
static inline void hwsim_dma_sync_single_for_cpu(const char *dev, hwsim_iova_t iova, size_t size, int dir) {
    hwsim__dma_sync_for_cpu(dev, hwsim__strlen(dev), iova, size, dir);
}
static inline void hwsim_dma_sync_single_for_device(const char *dev, hwsim_iova_t iova, size_t size, int dir) {
    hwsim__dma_sync_for_device(dev, hwsim__strlen(dev), iova, size, dir);
}
static inline void *hwsim_dma_alloc_coherent(const char *dev, size_t size, hwsim_iova_t *iova) {
    return hwsim__dma_alloc_coherent(dev, hwsim__strlen(dev), size, iova);
}
static inline void hwsim_dma_free_coherent(const char *dev, size_t size, void *cpu, hwsim_iova_t iova) {
    hwsim__dma_free_coherent(dev, hwsim__strlen(dev), size, cpu, iova);
}
static inline int hwsim_dma_mapping_error(hwsim_iova_t iova) { return iova == HWSIM_DMA_MAPPING_ERROR; }
#endif

#endif /* HWSIM_H */

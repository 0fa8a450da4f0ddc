/* The hwsim host interface for native firmware: each function is an ecall to the host
 * (a7 = service number, arguments in a0-a5, result in a0), so the same driver sources run
 * unsandboxed on the board, with physical addresses and the IOMMU in bare mode. */
#include <hwsim.h>

enum { SVC_MMIO_MAP = 1, SVC_IRQ_WAIT, SVC_LOG, SVC_NOW_NS, SVC_SLEEP_NS, SVC_DMA_MAP, SVC_DMA_UNMAP,
       SVC_DMA_SYNC_CPU, SVC_DMA_SYNC_DEVICE, SVC_DMA_ALLOC, SVC_DMA_FREE, SVC_REQUEST_IRQ, SVC_FREE_IRQ };

static long svc(long n, long a0, long a1, long a2, long a3, long a4) {
    register long r_a0 __asm__("a0") = a0;
    register long r_a1 __asm__("a1") = a1;
    register long r_a2 __asm__("a2") = a2;
    register long r_a3 __asm__("a3") = a3;
    register long r_a4 __asm__("a4") = a4;
    register long r_a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a2), "r"(r_a3), "r"(r_a4), "r"(r_a7) : "memory");
    return r_a0;
}

void *hwsim__mmio_map(const char *name, size_t len) { return (void *)svc(SVC_MMIO_MAP, (long)name, len, 0, 0, 0); }
int hwsim__irq_wait(const char *name, size_t len) { return (int)svc(SVC_IRQ_WAIT, (long)name, len, 0, 0, 0); }
void hwsim__log(const char *text, size_t len) { svc(SVC_LOG, (long)text, len, 0, 0, 0); }
uint64_t hwsim_now_ns(void) { return (uint64_t)svc(SVC_NOW_NS, 0, 0, 0, 0, 0); }
void hwsim_sleep_ns(uint64_t ns) { svc(SVC_SLEEP_NS, (long)ns, 0, 0, 0, 0); }
hwsim_iova_t hwsim__dma_map(const char *d, size_t l, const void *cpu, size_t size, int dir) {
    return (hwsim_iova_t)svc(SVC_DMA_MAP, (long)d, l, (long)cpu, size, dir);
}
void hwsim__dma_unmap(const char *d, size_t l, hwsim_iova_t iova, size_t size, int dir) {
    svc(SVC_DMA_UNMAP, (long)d, l, (long)iova, size, dir);
}
void hwsim__dma_sync_for_cpu(const char *d, size_t l, hwsim_iova_t iova, size_t size, int dir) {
    svc(SVC_DMA_SYNC_CPU, (long)d, l, (long)iova, size, dir);
}
void hwsim__dma_sync_for_device(const char *d, size_t l, hwsim_iova_t iova, size_t size, int dir) {
    svc(SVC_DMA_SYNC_DEVICE, (long)d, l, (long)iova, size, dir);
}
void *hwsim__dma_alloc_coherent(const char *d, size_t l, size_t size, hwsim_iova_t *iova) {
    return (void *)svc(SVC_DMA_ALLOC, (long)d, l, size, (long)iova, 0);
}
void hwsim__dma_free_coherent(const char *d, size_t l, size_t size, void *cpu, hwsim_iova_t iova) {
    svc(SVC_DMA_FREE, (long)d, l, size, (long)cpu, (long)iova);
}
int hwsim__request_irq(const char *d, size_t l, uint32_t cookie) { return (int)svc(SVC_REQUEST_IRQ, (long)d, l, cookie, 0, 0); }
void hwsim__free_irq(const char *d, size_t l) { svc(SVC_FREE_IRQ, (long)d, l, 0, 0, 0); }

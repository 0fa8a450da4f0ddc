/* Shared by the benchmark programs: fixed-width types, and the one entry point each exports. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
u32 bench(u32 n);

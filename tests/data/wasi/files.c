/* files: a tour of the filesystem calls under the preopened directory "data". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { printf("opendir %s: %s\n", dir, strerror(errno)); return; }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("%s:", dir);
    for (int i = 0; i < n; i++) { printf(" %s", names[i]); free(names[i]); }
    printf("\n");
}

static void check(const char *what, int r) { printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok"); }

int main(void) {
    FILE *f = fopen("data/notes.txt", "w");
    if (!f) { printf("fopen: %s\n", strerror(errno)); return 1; }
    for (int i = 0; i < 100; i++) fprintf(f, "line %d\n", i);
    fclose(f);
    struct stat st;
    check("stat", stat("data/notes.txt", &st));
    printf("size=%lld regular=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    int fd = open("data/notes.txt", O_RDWR);
    char buf[32] = {0};
    lseek(fd, 70, SEEK_SET);
    printf("read=%zd ", read(fd, buf, 10));
    printf("[%.10s] tell=%lld\n", buf, (long long)lseek(fd, 0, SEEK_CUR));
    printf("pwrite=%zd\n", pwrite(fd, "XXXX", 4, 0));
    printf("pread=%zd ", pread(fd, buf, 12, 0));
    printf("[%.12s]\n", buf);
    check("ftruncate", ftruncate(fd, 20));
    fstat(fd, &st);
    printf("size after truncate=%lld\n", (long long)st.st_size);
    close(fd);
    check("mkdir", mkdir("data/sub", 0755));
    check("mkdir again", mkdir("data/sub", 0755));
    check("rename", rename("data/notes.txt", "data/sub/moved.txt"));
    check("symlink", symlink("sub/moved.txt", "data/link"));
    char target[64] = {0};
    ssize_t n = readlink("data/link", target, sizeof target - 1);
    printf("readlink=%zd %s\n", n, n > 0 ? target : "");
    check("link", link("data/sub/moved.txt", "data/hard.txt"));
    list("data");
    list("data/sub");
    check("open missing", open("data/missing.txt", O_RDONLY));
    check("open outside", open("/etc/passwd", O_RDONLY));
    check("open dotdot", open("data/../../etc/passwd", O_RDONLY));
    check("rmdir nonempty", rmdir("data/sub"));
    check("unlink dir", unlink("data/sub"));
    check("unlink", unlink("data/link"));
    check("unlink", unlink("data/hard.txt"));
    check("unlink", unlink("data/sub/moved.txt"));
    check("rmdir", rmdir("data/sub"));
    f = fopen("data/append.txt", "a");
    fputs("one\n", f);
    fclose(f);
    f = fopen("data/append.txt", "a");
    fputs("two\n", f);
    fclose(f);
    f = fopen("data/append.txt", "r");
    while (fgets(buf, sizeof buf, f)) printf("append: %s", buf);
    fclose(f);
    list("data");
    return 0;
}

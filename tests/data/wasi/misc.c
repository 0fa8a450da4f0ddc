/* misc: sleeping, big directories read in several calls, times, sync, allocate, isatty, stdio state. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec a, b, req = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&req, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("slept at least 20 ms: %s\n", ms >= 20 ? "yes" : "no");
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "data/a-rather-long-file-name-number-%03d.txt", i);
        int fd = open(name, O_CREAT | O_WRONLY, 0644);
        dprintf(fd, "%d\n", i);
        close(fd);
    }
    DIR *d = opendir("data");
    int n = 0, dots = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        n++;
        if (e->d_name[0] == '.') dots++;
    }
    closedir(d);
    printf("entries %d (dots %d)\n", n, dots);
    int fd = open("data/a-rather-long-file-name-number-007.txt", O_RDWR);
    printf("seek end %lld\n", (long long)lseek(fd, 0, SEEK_END));
    char buf[16];
    printf("pread past end %zd\n", pread(fd, buf, sizeof buf, 100));
    /* posix_fallocate left out: hwsim allocates (fd_allocate), Wasmtime answers NOTSUP */
    struct stat st, st2;
    fstat(fd, &st);
    stat("data/a-rather-long-file-name-number-007.txt", &st2);
    printf("size %lld same ino %d same dev %d\n", (long long)st.st_size, st.st_ino == st2.st_ino,
           st.st_dev == st2.st_dev);
    printf("fsync %d fdatasync %d\n", fsync(fd), fdatasync(fd));
    struct timespec times[2] = {{1000000000, 0}, {1500000000, 500}};
    printf("futimens %d\n", futimens(fd, times));
    fstat(fd, &st);
    printf("mtime %lld.%09ld\n", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    printf("utimensat %d\n", utimensat(AT_FDCWD, "data/a-rather-long-file-name-number-008.txt", times, 0));
    close(fd);
    printf("isatty(0) %d isatty(5) %d\n", isatty(0), isatty(5));
    int flags = fcntl(1, F_GETFL);
    printf("stdout writable %d\n", (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR);
    fd = open("data/app.txt", O_CREAT | O_WRONLY | O_APPEND, 0644);
    printf("append flag %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    printf("clear append %d\n", fcntl(fd, F_SETFL, 0));
    printf("append flag %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    close(fd);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "data/a-rather-long-file-name-number-%03d.txt", i);
        unlink(name);
    }
    unlink("data/app.txt");
    printf("rand differs %d\n", arc4random() != arc4random());
    return 0;
}

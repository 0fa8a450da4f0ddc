/* errors: the errno of calls that fail, under the preopened directory "data" (compared with wasmtime). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%-28s %s\n", what, r < 0 ? strerror(errno) : "ok");
    errno = 0;
}

int main(void) {
    mkdir("data/dir", 0755);
    int fd = open("data/file", O_CREAT | O_WRONLY, 0644);
    write(fd, "abc", 3);
    close(fd);
    symlink("loop", "data/loop");
    symlink("file", "data/tofile");
    symlink("/etc/passwd", "data/abs");
    symlink("../../etc", "data/up");

    report("open dir for writing", open("data/dir", O_WRONLY));
    report("open file as dir", open("data/file", O_RDONLY | O_DIRECTORY));
    report("open through a file", open("data/file/x", O_RDONLY));
    report("create existing excl", open("data/file", O_CREAT | O_EXCL | O_WRONLY, 0644));
    report("open missing", open("data/missing", O_RDONLY));
    report("open symlink loop", open("data/loop", O_RDONLY));
    report("open via symlink", open("data/tofile", O_RDONLY));
    report("open nofollow symlink", open("data/tofile", O_RDONLY | O_NOFOLLOW));
    report("open absolute symlink", open("data/abs", O_RDONLY));
    report("open escaping symlink", open("data/up/passwd", O_RDONLY));
    report("open dotdot escape", open("data/dir/../../x", O_RDONLY));
    int rd = open("data/file", O_RDONLY);
    report("write to read-only fd", write(rd, "x", 1));
    report("lseek negative", lseek(rd, -10, SEEK_SET));
    report("ftruncate read-only fd", ftruncate(rd, 0));
    close(rd);
    int wr = open("data/file", O_WRONLY);
    char buf[4];
    report("read from write-only fd", read(wr, buf, 1));
    close(wr);
    report("read closed fd", read(wr, buf, 1));
    report("close closed fd", close(wr));
    report("mkdir existing", mkdir("data/dir", 0755));
    report("mkdir in missing", mkdir("data/nope/dir", 0755));
    report("rmdir file", rmdir("data/file"));
    report("rmdir missing", rmdir("data/missing"));
    report("unlink dir", unlink("data/dir"));
    report("unlink missing", unlink("data/missing"));
    report("rename missing", rename("data/missing", "data/x"));
    report("rename file onto dir", rename("data/file", "data/dir"));
    report("rename dir into itself", rename("data/dir", "data/dir/sub"));
    report("link to missing", link("data/missing", "data/x"));
    report("link onto existing", link("data/file", "data/tofile"));
    report("symlink onto existing", symlink("x", "data/file"));
    char target[32];
    report("readlink of a file", readlink("data/file", target, sizeof target));
    report("readlink missing", readlink("data/missing", target, sizeof target));
    struct stat st;
    report("stat missing", stat("data/missing", &st));
    report("stat loop", stat("data/loop", &st));
    report("lstat loop", lstat("data/loop", &st));
    report("opendir file", opendir("data/file") ? 0 : -1);
    report("chdir-free relative open", open("file", O_RDONLY));
    struct timespec ts;
    report("clock_gettime bad clock", clock_gettime((clockid_t)99, &ts));
    unlink("data/loop");
    unlink("data/tofile");
    unlink("data/abs");
    unlink("data/up");
    unlink("data/file");
    rmdir("data/dir");
    return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The accelerator probe's guest, generated here as bytes: real-mode code at
 * the start of a 64 KiB firmware image and a jump to it at the reset vector.
 * It is small but real work for a vCPU: a crawling KVM shows in its time.
 */

#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "vmsup-accel-guest.h"
#include "vmsup-error.h"
#include "vmsup-qemu-process.h"

/* QEMU wants a PC BIOS in whole 64 KiB units; the CPU starts 16 bytes before its end */
#define VMSUP_ACCEL_GUEST_SIZE (64 * 1024)
#define VMSUP_ACCEL_GUEST_RESET (VMSUP_ACCEL_GUEST_SIZE - 16)
#define VMSUP_ACCEL_GUEST_FILE "probe.bin"
#define VMSUP_ACCEL_GUEST_CONSOLE "probe.out"
/* enough for the guest (it uses 0x10000-0x8ffff), small enough to start fast */
#define VMSUP_ACCEL_GUEST_MEMORY_MIB 16

/*
 * 16-bit code at offset 0 (CS base 0xffff0000 after reset). 16 rounds of
 * `rep stosb` fill 512 KiB at 0x10000 with 0x5a; a second pass sums it back
 * byte by byte into edx (16 * 32768 * 0x5a = 0x2d00000); a counted loop adds
 * 10,000,000; the result must be 0x3689680. Under TCG this takes about 35 ms
 * on a 2-core host, natively a few ms. One instruction a line.
 */
/* clang-format off */
static const guint8 vmsup_accel_guest_code[] = {
	0xfa,                                     /* cli */
	0xfc,                                     /* cld */
	0xb0, VMSUP_ACCEL_GUEST_MARK_START,       /* mov $'S', %al */
	0xe6, 0xe9,                               /* out %al, $0xe9 */
	0xbb, 0x00, 0x10,                         /* mov $0x1000, %bx */
	0xbe, 0x10, 0x00,                         /* mov $16, %si */
	0x8e, 0xc3,                               /* fill: mov %bx, %es */
	0x31, 0xff,                               /* xor %di, %di */
	0xb9, 0x00, 0x80,                         /* mov $0x8000, %cx */
	0xb0, 0x5a,                               /* mov $0x5a, %al */
	0xf3, 0xaa,                               /* rep stosb */
	0x81, 0xc3, 0x00, 0x08,                   /* add $0x800, %bx */
	0x4e,                                     /* dec %si */
	0x75, 0xee,                               /* jnz fill */
	0x66, 0x31, 0xd2,                         /* xor %edx, %edx */
	0x66, 0x31, 0xc0,                         /* xor %eax, %eax */
	0xbb, 0x00, 0x10,                         /* mov $0x1000, %bx */
	0xbd, 0x10, 0x00,                         /* mov $16, %bp */
	0x8e, 0xdb,                               /* sum: mov %bx, %ds */
	0x31, 0xf6,                               /* xor %si, %si */
	0xb9, 0x00, 0x80,                         /* mov $0x8000, %cx */
	0xac,                                     /* 1: lodsb */
	0x66, 0x01, 0xc2,                         /* add %eax, %edx */
	0xe2, 0xfa,                               /* loop 1b */
	0x81, 0xc3, 0x00, 0x08,                   /* add $0x800, %bx */
	0x4d,                                     /* dec %bp */
	0x75, 0xec,                               /* jnz sum */
	0x66, 0xb9, 0x80, 0x96, 0x98, 0x00,       /* mov $10000000, %ecx */
	0x66, 0x42,                               /* 2: inc %edx */
	0x66, 0x49,                               /* dec %ecx */
	0x75, 0xfa,                               /* jnz 2b */
	0xb0, VMSUP_ACCEL_GUEST_MARK_OK,          /* mov $'*', %al */
	0x66, 0x81, 0xfa, 0x80, 0x96, 0x68, 0x03, /* cmp $0x3689680, %edx */
	0x74, 0x02,                               /* je 3f */
	0xb0, VMSUP_ACCEL_GUEST_MARK_BAD,         /* mov $'?', %al */
	0xe6, 0xe9,                               /* 3: out %al, $0xe9 */
	0xe6, 0xf4,                               /* out %al, $0xf4: QEMU exits */
	0xf4,                                     /* 4: hlt */
	0xeb, 0xfd,                               /* jmp 4b */
};
/* clang-format on */

GBytes *
vmsup_accel_guest_image(void)
{
	guint8 *image = g_malloc(VMSUP_ACCEL_GUEST_SIZE);
	/* jmp near to offset 0: rel16 counts from the end of the 3-byte instruction */
	guint16 rel = (guint16)(0 - (VMSUP_ACCEL_GUEST_RESET + 3));

	G_STATIC_ASSERT(sizeof(vmsup_accel_guest_code) < VMSUP_ACCEL_GUEST_RESET);

	/* hlt everywhere else: a stray jump stops the vCPU instead of running garbage */
	memset(image, 0xf4, VMSUP_ACCEL_GUEST_SIZE);
	memcpy(image, vmsup_accel_guest_code, sizeof(vmsup_accel_guest_code));
	image[VMSUP_ACCEL_GUEST_RESET] = 0xe9;
	image[VMSUP_ACCEL_GUEST_RESET + 1] = rel & 0xff;
	image[VMSUP_ACCEL_GUEST_RESET + 2] = rel >> 8;
	return g_bytes_new_take(image, VMSUP_ACCEL_GUEST_SIZE);
}

gchar *
vmsup_accel_guest_run_dir(const gchar *dir, VmsupAccel accel)
{
	return g_build_filename(dir, vmsup_accel_to_string(accel), NULL);
}

/* QEMU splits option strings on ','; a literal comma is written ",," */
static gchar *
vmsup_accel_guest_escape(const gchar *value)
{
	GString *str = g_string_new(value);
	g_string_replace(str, ",", ",,", 0);
	return g_string_free(str, FALSE);
}

gchar **
vmsup_accel_guest_build_argv(const gchar *qemu_binary,
			     VmsupAccel accel,
			     const gchar *dir,
			     GError **error)
{
	g_autoptr(VmsupQemuConfig) config = vmsup_qemu_config_new("accel-probe");
	g_autoptr(GBytes) image = vmsup_accel_guest_image();
	g_autofree gchar *image_path = g_build_filename(dir, VMSUP_ACCEL_GUEST_FILE, NULL);
	g_autofree gchar *run_dir = vmsup_accel_guest_run_dir(dir, accel);
	g_autofree gchar *console = NULL;
	g_autofree gchar *console_esc = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) base = NULL;

	g_return_val_if_fail(accel == VMSUP_ACCEL_KVM || accel == VMSUP_ACCEL_TCG, NULL);

	if (!g_file_set_contents_full(image_path,
				      g_bytes_get_data(image, NULL),
				      (gssize)g_bytes_get_size(image),
				      G_FILE_SET_CONTENTS_NONE,
				      0600,
				      error))
		return NULL;
	if (g_mkdir_with_parents(run_dir, 0700) != 0) {
		gint saved = errno;
		g_set_error(error,
			    VMSUP_ERROR,
			    VMSUP_ERROR_FAILED_PRECONDITION,
			    "cannot create '%s': %s",
			    run_dir,
			    g_strerror(saved));
		return NULL;
	}

	/* the argv of a VM with nothing attached, so the probe tests what VMs get */
	config->qemu_binary = g_strdup(qemu_binary);
	config->accel = accel;
	config->memory_mib = VMSUP_ACCEL_GUEST_MEMORY_MIB;
	config->network = FALSE;
	config->agent = FALSE;
	base = vmsup_qemu_config_build_argv(config, run_dir, /* qmp_fd= */ -1, error);
	if (base == NULL)
		return NULL;
	for (guint i = 0; base[i] != NULL; i++)
		g_ptr_array_add(argv, g_steal_pointer(&base[i]));

	console = g_build_filename(run_dir, VMSUP_ACCEL_GUEST_CONSOLE, NULL);
	console_esc = vmsup_accel_guest_escape(console);
	g_ptr_array_add(argv, g_strdup("-bios"));
	g_ptr_array_add(argv, g_steal_pointer(&image_path));
	g_ptr_array_add(argv, g_strdup("-device"));
	g_ptr_array_add(argv, g_strdup("isa-debug-exit,iobase=0xf4,iosize=0x04"));
	g_ptr_array_add(argv, g_strdup("-chardev"));
	g_ptr_array_add(argv, g_strdup_printf("file,id=probe0,path=%s", console_esc));
	g_ptr_array_add(argv, g_strdup("-device"));
	g_ptr_array_add(argv, g_strdup("isa-debugcon,iobase=0xe9,chardev=probe0"));
	g_ptr_array_add(argv, NULL);
	return (gchar **)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
}

gchar *
vmsup_accel_guest_read_console(const gchar *dir, VmsupAccel accel)
{
	g_autofree gchar *run_dir = vmsup_accel_guest_run_dir(dir, accel);
	g_autofree gchar *path = g_build_filename(run_dir, VMSUP_ACCEL_GUEST_CONSOLE, NULL);
	gchar *contents = NULL;

	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return g_strdup("");
	return contents;
}

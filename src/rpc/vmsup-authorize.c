/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Who may call the D-Bus interface, decided once for every method in the
 * skeletons' "g-authorize-method" signal. GDBus emits it in a worker thread,
 * so the uid lookup and polkit's CheckAuthorization are plain blocking calls
 * over D-Bus (no libpolkit).
 */

#include "config.h"

#include <glib/gi18n.h>
#include <unistd.h>

#include "vmsup-authorize.h"

/* unique bus names are never reused, so a cached uid cannot go stale; the cap bounds memory */
#define VMSUP_AUTHORIZE_UID_CACHE_MAX 1024

/* polkit's CheckAuthorizationFlags */
#define VMSUP_POLKIT_ALLOW_USER_INTERACTION 1u

struct _VmsupAuthorize {
	GObject parent_instance;
	VmsupAuthorizeMode mode;
	GMutex lock;           /* guards uid_cache: handlers run in GDBus worker threads */
	GHashTable *uid_cache; /* owned: sender (owned) -> uid */
};

G_DEFINE_FINAL_TYPE(VmsupAuthorize, vmsup_authorize, G_TYPE_OBJECT)

enum { PROP_0, PROP_MODE, N_PROPS };
static GParamSpec *props[N_PROPS];

static GQuark
vmsup_authorize_caller_uid_quark(void)
{
	return g_quark_from_static_string("vmsup-authorize-caller-uid");
}

const gchar *
vmsup_authorize_action_for(const VmsupRpcMethod *method)
{
	if (method != NULL && (method->flags & VMSUP_RPC_FLAG_READ_ONLY))
		return VMSUP_AUTHORIZE_ACTION_READ;
	return VMSUP_AUTHORIZE_ACTION_MANAGE;
}

static gboolean
vmsup_authorize_lookup_uid(VmsupAuthorize *self,
			   GDBusConnection *connection,
			   const gchar *sender,
			   guint32 *out_uid,
			   GError **error)
{
	gpointer cached = NULL;
	gboolean found;
	g_autoptr(GVariant) reply = NULL;
	guint32 uid;

	/* a peer-to-peer connection has no bus to ask: its credentials are the caller's */
	if (sender == NULL) {
		GCredentials *credentials = g_dbus_connection_get_peer_credentials(connection);
		uid_t peer_uid;
		if (credentials == NULL) {
			g_set_error_literal(error,
					    G_DBUS_ERROR,
					    G_DBUS_ERROR_ACCESS_DENIED,
					    _("The caller of vmsupd could not be identified"));
			return FALSE;
		}
		peer_uid = g_credentials_get_unix_user(credentials, error);
		if (peer_uid == (uid_t)-1)
			return FALSE;
		*out_uid = peer_uid;
		return TRUE;
	}

	g_mutex_lock(&self->lock);
	found = g_hash_table_lookup_extended(self->uid_cache, sender, NULL, &cached);
	g_mutex_unlock(&self->lock);
	if (found) {
		*out_uid = GPOINTER_TO_UINT(cached);
		return TRUE;
	}

	reply = g_dbus_connection_call_sync(connection,
					    "org.freedesktop.DBus",
					    "/org/freedesktop/DBus",
					    "org.freedesktop.DBus",
					    "GetConnectionUnixUser",
					    g_variant_new("(s)", sender),
					    G_VARIANT_TYPE("(u)"),
					    G_DBUS_CALL_FLAGS_NONE,
					    /* timeout_msec= */ -1,
					    /* cancellable= */ NULL,
					    error);
	if (reply == NULL) {
		g_prefix_error(error, "cannot identify %s: ", sender);
		return FALSE;
	}
	g_variant_get(reply, "(u)", &uid);

	g_mutex_lock(&self->lock);
	if (g_hash_table_size(self->uid_cache) >= VMSUP_AUTHORIZE_UID_CACHE_MAX)
		g_hash_table_remove_all(self->uid_cache);
	g_hash_table_insert(self->uid_cache, g_strdup(sender), GUINT_TO_POINTER(uid));
	g_mutex_unlock(&self->lock);

	*out_uid = uid;
	return TRUE;
}

static gboolean
vmsup_authorize_check_polkit(GDBusConnection *connection,
			     const gchar *sender,
			     const gchar *action,
			     gboolean allow_interaction,
			     GError **error)
{
	GVariantBuilder subject;
	GVariantBuilder details;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GError) error_local = NULL;
	gboolean is_authorized = FALSE;
	gboolean is_challenge = FALSE;

	if (sender == NULL) {
		g_set_error_literal(error,
				    G_DBUS_ERROR,
				    G_DBUS_ERROR_ACCESS_DENIED,
				    _("Only root may call vmsupd over a private connection"));
		return FALSE;
	}

	g_variant_builder_init(&subject, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&subject, "{sv}", "name", g_variant_new_string(sender));
	g_variant_builder_init(&details, G_VARIANT_TYPE("a{ss}"));
	reply = g_dbus_connection_call_sync(
	    connection,
	    "org.freedesktop.PolicyKit1",
	    "/org/freedesktop/PolicyKit1/Authority",
	    "org.freedesktop.PolicyKit1.Authority",
	    "CheckAuthorization",
	    g_variant_new("((sa{sv})sa{ss}us)",
			  "system-bus-name",
			  &subject,
			  action,
			  &details,
			  allow_interaction ? VMSUP_POLKIT_ALLOW_USER_INTERACTION : 0u,
			  /* cancellation_id= */ ""),
	    G_VARIANT_TYPE("((bba{ss}))"),
	    G_DBUS_CALL_FLAGS_NONE,
	    /* a person may be typing a password */
	    allow_interaction ? G_MAXINT : -1,
	    /* cancellable= */ NULL,
	    &error_local);
	if (reply == NULL) {
		g_dbus_error_strip_remote_error(error_local);
		g_set_error(error,
			    G_DBUS_ERROR,
			    G_DBUS_ERROR_ACCESS_DENIED,
			    _("Cannot check authorization with polkit: %s"),
			    error_local->message);
		return FALSE;
	}
	g_variant_get(reply, "((bb@a{ss}))", &is_authorized, &is_challenge, NULL);
	if (is_authorized)
		return TRUE;
	if (is_challenge) {
		g_autofree gchar *message =
		    allow_interaction
			/* TRANSLATORS: %s is a polkit action id */
			? g_strdup_printf(_("Authentication is required for %s, and no polkit "
					    "authentication agent answered; start one (for "
					    "example pkttyagent) or ask an administrator for "
					    "access"),
					  action)
			/* TRANSLATORS: %s is a polkit action id */
			: g_strdup_printf(_("Authentication is required for %s; call again "
					    "allowing interactive authorization ('gdbus call "
					    "--interactive')"),
					  action);
		/* GLib 2.74 has no GDBusError code for this standard name */
		g_propagate_error(error,
				  g_dbus_error_new_for_dbus_error(
				      "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
				      message));
		return FALSE;
	}
	g_set_error(error,
		    G_DBUS_ERROR,
		    G_DBUS_ERROR_ACCESS_DENIED,
		    /* TRANSLATORS: %s is a polkit action id */
		    _("Not authorized for %s; ask an administrator for access"),
		    action);
	return FALSE;
}

/* reading properties and the object list is looking, whatever their method is called */
static const gchar *
vmsup_authorize_action_for_call(const gchar *interface_name, const gchar *method_name)
{
	if (g_strcmp0(interface_name, "org.freedesktop.DBus.Properties") == 0 ||
	    g_strcmp0(interface_name, "org.freedesktop.DBus.ObjectManager") == 0)
		return VMSUP_AUTHORIZE_ACTION_READ;
	return vmsup_authorize_action_for(vmsup_rpc_table_lookup_dbus(method_name));
}

static gboolean
vmsup_authorize_decide(VmsupAuthorize *self,
		       GDBusConnection *connection,
		       const gchar *sender,
		       guint32 uid,
		       const gchar *action,
		       gboolean allow_interaction,
		       GError **error)
{

	if (self->mode == VMSUP_AUTHORIZE_MODE_SESSION) {
		g_autofree gchar *self_exe = NULL;

		if (uid == (guint32)geteuid())
			return TRUE;
		/* the program that runs here, as vmsupd is not in PATH once installed */
		self_exe = g_file_read_link("/proc/self/exe", NULL);
		g_set_error(
		    error,
		    G_DBUS_ERROR,
		    G_DBUS_ERROR_ACCESS_DENIED,
		    /* TRANSLATORS: the numbers are user ids, the %s is the path of vmsupd */
		    _("This vmsupd serves user %u only, not user %u; start your own "
		      "with '%s --session'"),
		    (guint)geteuid(),
		    uid,
		    self_exe != NULL ? self_exe : VMSUP_LIBEXECDIR "/vmsupd");
		return FALSE;
	}
	if (uid == 0)
		return TRUE;
	return vmsup_authorize_check_polkit(connection, sender, action, allow_interaction, error);
}

gboolean
vmsup_authorize_check_sync(VmsupAuthorize *self,
			   GDBusConnection *connection,
			   const gchar *sender,
			   guint32 uid,
			   const VmsupRpcMethod *method,
			   gboolean allow_interaction,
			   GError **error)
{
	g_return_val_if_fail(VMSUP_IS_AUTHORIZE(self), FALSE);
	g_return_val_if_fail(G_IS_DBUS_CONNECTION(connection), FALSE);

	return vmsup_authorize_decide(self,
				      connection,
				      sender,
				      uid,
				      vmsup_authorize_action_for(method),
				      allow_interaction,
				      error);
}

gboolean
vmsup_authorize_get_caller_uid(GDBusMethodInvocation *invocation, guint32 *out_uid)
{
	const guint32 *uid;

	g_return_val_if_fail(G_IS_DBUS_METHOD_INVOCATION(invocation), FALSE);

	uid = g_object_get_qdata(G_OBJECT(invocation), vmsup_authorize_caller_uid_quark());
	if (uid == NULL)
		return FALSE;
	if (out_uid != NULL)
		*out_uid = *uid;
	return TRUE;
}

/* a standard D-Bus error (InteractiveAuthorizationRequired) goes out under its own name */
static void
vmsup_authorize_return_error(GDBusMethodInvocation *invocation, GError *error)
{
	g_autofree gchar *name = NULL;

	if (!g_dbus_error_is_remote_error(error)) {
		g_dbus_method_invocation_return_gerror(invocation, error);
		return;
	}
	name = g_dbus_error_get_remote_error(error);
	g_dbus_error_strip_remote_error(error);
	g_dbus_method_invocation_return_dbus_error(invocation, name, error->message);
}

/* runs in a GDBus worker thread */
static gboolean
vmsup_authorize_method_cb(GDBusInterfaceSkeleton *skeleton,
			  GDBusMethodInvocation *invocation,
			  gpointer user_data)
{
	VmsupAuthorize *self = VMSUP_AUTHORIZE(user_data);
	GDBusConnection *connection = g_dbus_method_invocation_get_connection(invocation);
	const gchar *sender = g_dbus_method_invocation_get_sender(invocation);
	GDBusMessage *message = g_dbus_method_invocation_get_message(invocation);
	const gchar *action =
	    vmsup_authorize_action_for_call(g_dbus_method_invocation_get_interface_name(invocation),
					    g_dbus_method_invocation_get_method_name(invocation));
	gboolean allow_interaction = (g_dbus_message_get_flags(message) &
				      G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
	g_autoptr(GError) error = NULL;
	guint32 uid = 0;

	if (!vmsup_authorize_lookup_uid(self, connection, sender, &uid, &error) ||
	    !vmsup_authorize_decide(self,
				    connection,
				    sender,
				    uid,
				    action,
				    allow_interaction,
				    &error)) {
		g_debug("%s.%s from %s denied: %s",
			g_dbus_method_invocation_get_interface_name(invocation),
			g_dbus_method_invocation_get_method_name(invocation),
			sender != NULL ? sender : "peer",
			error->message);
		vmsup_authorize_return_error(invocation, error);
		return FALSE;
	}
	g_object_set_qdata_full(G_OBJECT(invocation),
				vmsup_authorize_caller_uid_quark(),
				g_memdup2(&uid, sizeof(uid)),
				g_free);
	return TRUE;
}

void
vmsup_authorize_attach(VmsupAuthorize *self, GDBusInterfaceSkeleton *skeleton)
{
	g_return_if_fail(VMSUP_IS_AUTHORIZE(self));
	g_return_if_fail(G_IS_DBUS_INTERFACE_SKELETON(skeleton));

	/* the handler owns a ref: a decision still running in a worker thread keeps @self alive */
	g_signal_connect_data(skeleton,
			      "g-authorize-method",
			      G_CALLBACK(vmsup_authorize_method_cb),
			      g_object_ref(self),
			      (GClosureNotify)(void (*)(void))g_object_unref,
			      G_CONNECT_DEFAULT);
}

static void
vmsup_authorize_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
	VmsupAuthorize *self = VMSUP_AUTHORIZE(object);

	switch (prop_id) {
	case PROP_MODE:
		g_value_set_int(value, self->mode);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
vmsup_authorize_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
	VmsupAuthorize *self = VMSUP_AUTHORIZE(object);

	switch (prop_id) {
	case PROP_MODE:
		self->mode = g_value_get_int(value);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
	}
}

static void
vmsup_authorize_finalize(GObject *object)
{
	VmsupAuthorize *self = VMSUP_AUTHORIZE(object);

	g_hash_table_unref(self->uid_cache);
	g_mutex_clear(&self->lock);
	G_OBJECT_CLASS(vmsup_authorize_parent_class)->finalize(object);
}

static void
vmsup_authorize_class_init(VmsupAuthorizeClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);

	object_class->get_property = vmsup_authorize_get_property;
	object_class->set_property = vmsup_authorize_set_property;
	object_class->finalize = vmsup_authorize_finalize;

	props[PROP_MODE] =
	    g_param_spec_int("mode",
			     NULL,
			     NULL,
			     VMSUP_AUTHORIZE_MODE_SESSION,
			     VMSUP_AUTHORIZE_MODE_SYSTEM,
			     VMSUP_AUTHORIZE_MODE_SESSION,
			     G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
	g_object_class_install_properties(object_class, N_PROPS, props);
}

static void
vmsup_authorize_init(VmsupAuthorize *self)
{
	g_mutex_init(&self->lock);
	self->uid_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

VmsupAuthorize *
vmsup_authorize_new(VmsupAuthorizeMode mode)
{
	return g_object_new(VMSUP_TYPE_AUTHORIZE, "mode", mode, NULL);
}

using System.Diagnostics;
using Tmds.DBus.Protocol;

namespace SharedLvm.Tests.Support;

/// <summary>
/// A private dbus-daemon (Debian's dbus package) on a unix socket in a temp directory, and a
/// stand-in for systemd on it: org.freedesktop.systemd1 with the Manager calls and unit properties
/// the agent uses, and the UnitNew/UnitRemoved signals it listens to.
/// </summary>
internal sealed class PrivateBus : IAsyncDisposable
{
    public const string UnitPath = "/org/freedesktop/systemd1/unit/multipathd_2eservice";
    private readonly Process _daemon;
    private readonly string _directory;
    private readonly DBusConnection _systemd;

    private PrivateBus(Process daemon, string directory, string address, DBusConnection systemd, FakeSystemd fake)
    {
        _daemon = daemon;
        _directory = directory;
        Address = address;
        _systemd = systemd;
        Systemd = fake;
    }

    public string Address { get; }

    public FakeSystemd Systemd { get; }

    public static async Task<PrivateBus> StartAsync()
    {
        Requirement.Demand(File.Exists("/usr/bin/dbus-daemon"), "dbus-daemon is not installed (Debian package dbus)", "SHAREDLVM_SKIP_DBUS");
        var directory = Directory.CreateTempSubdirectory("slvm-dbus-").FullName;
        var address = $"unix:path={directory}/bus";
        var config = Path.Combine(directory, "bus.conf");
        await File.WriteAllTextAsync(config, $"""
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig>
              <type>session</type>
              <listen>{address}</listen>
              <auth>EXTERNAL</auth>
              <policy context="default">
                <allow send_destination="*" eavesdrop="true"/>
                <allow eavesdrop="true"/>
                <allow own="*"/>
              </policy>
            </busconfig>
            """);
        var daemon = Process.Start(new ProcessStartInfo("dbus-daemon", ["--config-file", config, "--nofork", "--print-address"]) { RedirectStandardOutput = true })!;
        await daemon.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
        var systemd = new DBusConnection(address);
        await systemd.ConnectAsync();
        var fake = new FakeSystemd(systemd);
        systemd.AddMethodHandler(fake);
        await systemd.RequestNameAsync("org.freedesktop.systemd1");
        return new PrivateBus(daemon, directory, address, systemd, fake);
    }

    public async ValueTask DisposeAsync()
    {
        _systemd.Dispose();
        _daemon.Kill();
        await _daemon.WaitForExitAsync();
        _daemon.Dispose();
        Directory.Delete(_directory, recursive: true);
        await Task.CompletedTask;
    }

    /// <summary>What systemd would say: multipathd.service's state, and the restarts it was asked for.</summary>
    internal sealed class FakeSystemd(DBusConnection connection) : IPathMethodHandler
    {
        public string Path => "/org/freedesktop/systemd1";

        public bool HandlesChildPaths => true;

        public string ActiveState { get; set; } = "failed";

        public string SubState { get; set; } = "failed";

        public string Result { get; set; } = "signal";

        public uint Restarts { get; set; } = 2;

        public int RestartsAsked { get; private set; }

        public int Subscribed { get; private set; }

        /// <summary>Emits UnitNew or UnitRemoved, as systemd does when udev adds or removes a device.</summary>
        public void Unit(string name, bool added)
        {
            using var writer = connection.GetMessageWriter();
            writer.WriteSignalHeader(null, Path, "org.freedesktop.systemd1.Manager", added ? "UnitNew" : "UnitRemoved", "so");
            writer.WriteString(name);
            writer.WriteObjectPath("/org/freedesktop/systemd1/unit/x");
            connection.TrySendMessage(writer.CreateMessage());
        }

        public ValueTask HandleMethodAsync(MethodContext context)
        {
            var request = context.Request;
            switch (request.InterfaceAsString, request.MemberAsString)
            {
                case ("org.freedesktop.systemd1.Manager", "Subscribe"):
                    Subscribed++;
                    context.Reply(context.CreateReplyWriter(null).CreateMessage());
                    break;
                case ("org.freedesktop.systemd1.Manager", "LoadUnit"):
                    ReplyPath(context, UnitPath);
                    break;
                case ("org.freedesktop.systemd1.Manager", "RestartUnit"):
                    RestartsAsked++;
                    (ActiveState, SubState, Result) = ("active", "running", "success");
                    ReplyPath(context, "/org/freedesktop/systemd1/job/7");
                    break;
                case ("org.freedesktop.DBus.Properties", "GetAll"):
                    var @interface = request.GetBodyReader().ReadString();
                    {
                        // MessageWriter is a struct: helpers take it by reference, or their writes are lost.
                        var writer = context.CreateReplyWriter("a{sv}");
                        var dictionary = writer.WriteDictionaryStart();
                        if (@interface == "org.freedesktop.systemd1.Unit")
                        {
                            Entry(ref writer, "ActiveState", ActiveState);
                            Entry(ref writer, "SubState", SubState);
                        }
                        else
                        {
                            Entry(ref writer, "Result", Result);
                            Entry(ref writer, "StatusText", ActiveState == "active" ? "up" : string.Empty);
                            writer.WriteDictionaryEntryStart();
                            writer.WriteString("NRestarts");
                            writer.WriteVariantUInt32(Restarts);
                        }

                        writer.WriteDictionaryEnd(dictionary);
                        context.Reply(writer.CreateMessage());
                        writer.Dispose();
                    }

                    break;
                default:
                    context.ReplyUnknownMethodError();
                    break;
            }

            return ValueTask.CompletedTask;
        }

        private static void Entry(ref MessageWriter writer, string key, string value)
        {
            writer.WriteDictionaryEntryStart();
            writer.WriteString(key);
            writer.WriteVariantString(value);
        }

        private static void ReplyPath(MethodContext context, string path)
        {
            using var writer = context.CreateReplyWriter("o");
            writer.WriteObjectPath(path);
            context.Reply(writer.CreateMessage());
        }
    }
}

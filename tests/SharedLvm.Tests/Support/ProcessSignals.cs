using System.Diagnostics;
using System.Globalization;

namespace SharedLvm.Tests.Support;

/// <summary>SIGSTOP/SIGCONT: a process (or a whole host, process by process) that stops as a paused VM does.</summary>
public static class ProcessSignals
{
    public static void Pause(int pid) => Send("STOP", pid);

    public static void Resume(int pid) => Send("CONT", pid);

    private static void Send(string name, int pid) => Process.Start("kill", ["-" + name, pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
}

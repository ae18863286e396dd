using System.Globalization;

namespace SharedLvm.Tests.Support;

/// <summary>
/// How many times the crash tests kill the controller at each enumerated fault point. A point armed
/// alone (p=1) kills at the same step of the same request every time, so each kill from the same
/// start walks the same path: CI kills each point once, and repeats at varying moments are the random
/// test's (SHAREDLVM_CRASH_KILLS). Issue 16 asks for several kills per point; that is a soak,
/// SHAREDLVM_KILLS_PER_POINT=3: three per point took 20 of the main suite's 34 minutes on 2026-12-04,
/// and the full run with two per point took 87.7 of CI's 90 (stop 26 timed out at three).
/// </summary>
internal static class CrashKills
{
    public static int PerPoint { get; } = int.Parse(Environment.GetEnvironmentVariable("SHAREDLVM_KILLS_PER_POINT") ?? "1", CultureInfo.InvariantCulture);
}

using System.Diagnostics;

namespace SharedLvm.Tests.Support;

/// <summary>
/// A sparse file attached as a loop device: the stand-in for a shared LU on a machine without SCSI.
/// Needs root; tests using it fail without root unless SHAREDLVM_SKIP_LVM_TESTS=1 says skip.
/// </summary>
internal sealed class LoopDevice : IDisposable
{
    public const string SkipVariable = "SHAREDLVM_SKIP_LVM_TESTS";

    private LoopDevice(string file, string device)
    {
        File = file;
        Device = device;
    }

    public string File { get; }

    /// <summary>Skips the test (reported as Skipped, with the reason) when no LU was made.</summary>
    public static void Present([System.Diagnostics.CodeAnalysis.NotNull] LoopDevice? lu)
    {
        if (lu is null)
        {
            Assert.Skip($"{SkipVariable}=1: tests on real LVM deliberately skipped");
        }
    }

    public string Device { get; }

    /// <summary>Null when SHAREDLVM_SKIP_LVM_TESTS=1 asked to skip: each test then reports Skipped (<see cref="Present"/>).</summary>
    public static LoopDevice? Create(long sizeBytes)
    {
        if (string.Equals(Environment.GetEnvironmentVariable(SkipVariable), "1", StringComparison.Ordinal))
        {
            return null;
        }

        Requirement.Demand(Environment.UserName == "root", "LVM tests need root (loop devices, lvm)", SkipVariable);
        Requirement.Demand(Run("sh", "-c", "command -v lvm").Code == 0, "lvm2 is not installed", SkipVariable);
        var file = Path.Combine(Path.GetTempPath(), "slvm-lu-" + Guid.NewGuid().ToString("N")[..8] + ".img");
        using (var stream = new FileStream(file, FileMode.CreateNew))
        {
            stream.SetLength(sizeBytes);
        }

        var (code, output) = Run("losetup", "--find", "--show", file);
        Requirement.Demand(code == 0, "losetup failed: " + output, SkipVariable);
        return new LoopDevice(file, output.Trim());
    }

    /// <summary>Runs lvm directly against this device only, like another host would (for assertions and foreign writes).</summary>
    public (int Code, string Output) Lvm(params string[] arguments) =>
        Run("lvm", [arguments[0], "--config", $"global{{activation=0}} devices{{use_devicesfile=0 global_filter=[\"a|^{Device}$|\",\"r|.*|\"]}}", .. arguments[1..]]);

    /// <summary>An LV's tags as lvm lists them on this device (owner tags, wipe marks).</summary>
    public string LvTags(string vg, string lv) => Lvm("lvs", "--noheadings", "-o", "lv_tags", $"{vg}/{lv}").Output;

    /// <summary>As <see cref="Lvm"/>, stdout only (JSON reports), failing the test on a non-zero exit.</summary>
    public string LvmReport(params string[] arguments)
    {
        var info = new ProcessStartInfo("lvm") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])[arguments[0], "--config", $"global{{activation=0}} devices{{use_devicesfile=0 global_filter=[\"a|^{Device}$|\",\"r|.*|\"]}}", .. arguments[1..]])
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["LC_ALL"] = "C";
        info.Environment["LVM_SUPPRESS_FD_WARNINGS"] = "1";
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"lvm {string.Join(' ', arguments)}: {stderr.Result}");
        return stdout;
    }

    /// <summary>Where an LV's extents lie on this LU.</summary>
    public SharedLvm.Os.Lvm.LvLayout Layout(string vg, string lv) =>
        SharedLvm.Os.Lvm.LvLayoutParser.Parse(LvmReport("pvs", "--segments", "--reportformat", "json", "--units", "b", "--nosuffix",
            "-o", SharedLvm.Os.Lvm.LvLayoutParser.Fields, "--select", $"vg_name=\"{vg}\" && lv_name=\"{lv}\""))
        ?? throw new InvalidOperationException($"{vg}/{lv} does not exist on {Device}");

    /// <summary>Writes bytes into an LV at an LV offset, through the LU's backing file (what a node writing the LV would leave).</summary>
    public void WriteLv(SharedLvm.Os.Lvm.LvLayout layout, ulong lvOffset, ReadOnlySpan<byte> data)
    {
        using var file = new FileStream(File, FileMode.Open, FileAccess.Write);
        for (var done = 0; done < data.Length;)
        {
            var (device, contiguous) = Locate(layout, lvOffset + (ulong)done);
            var length = (int)Math.Min((ulong)(data.Length - done), contiguous);
            file.Position = (long)device;
            file.Write(data.Slice(done, length));
            done += length;
        }
    }

    /// <summary>Reads an LV's bytes at an LV offset, through the LU's backing file.</summary>
    public byte[] ReadLv(SharedLvm.Os.Lvm.LvLayout layout, ulong lvOffset, int count)
    {
        var data = new byte[count];
        using var file = new FileStream(File, FileMode.Open, FileAccess.Read);
        for (var done = 0; done < count;)
        {
            var (device, contiguous) = Locate(layout, lvOffset + (ulong)done);
            var length = (int)Math.Min((ulong)(count - done), contiguous);
            file.Position = (long)device;
            file.ReadExactly(data, done, length);
            done += length;
        }

        return data;
    }

    private static (ulong Device, ulong Contiguous) Locate(SharedLvm.Os.Lvm.LvLayout layout, ulong lvOffset)
    {
        var run = layout.Runs.First(r => lvOffset >= r.LvOffsetBytes && lvOffset < r.LvOffsetBytes + r.LengthBytes);
        return (run.DeviceOffsetBytes + (lvOffset - run.LvOffsetBytes), run.LvOffsetBytes + run.LengthBytes - lvOffset);
    }

    public void Dispose()
    {
        Run("losetup", "-d", Device);
        System.IO.File.Delete(File);
    }

    public static (int Code, string Output) Run(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["LC_ALL"] = "C";
        info.Environment["LVM_SUPPRESS_FD_WARNINGS"] = "1";
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }
}

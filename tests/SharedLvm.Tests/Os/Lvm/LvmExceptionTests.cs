using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Volumes;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Os.Lvm;

/// <summary>lvm failures, classified from their C-locale text and exit code.</summary>
public class LvmExceptionTests
{
    [Theory]
    [InlineData(5, "  Logical Volume \"lv1\" already exists in volume group \"vgt\"", LvmErrorKind.AlreadyExists)]
    [InlineData(5, "  Volume group \"vgt\" has insufficient free space (467 extents): 20480 required.", LvmErrorKind.InsufficientSpace)]
    [InlineData(5, "  Failed to find logical volume \"vgt/nope\"", LvmErrorKind.NotFound)]
    [InlineData(5, "  Volume group \"vgx\" not found\n  Cannot process volume group vgx", LvmErrorKind.NotFound)]
    [InlineData(5, "  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n  Can't create snapshot without using device-mapper kernel driver.", LvmErrorKind.NeedsDeviceMapper)]
    [InlineData(3, "  Invalid argument for --addtag: bad tag\n  Error during parsing of command line.", LvmErrorKind.InvalidArgument)]
    [InlineData(5, "  VG vgt metadata on /dev/loop0 (521 bytes) exceeds maximum metadata size (520 bytes)", LvmErrorKind.MetadataFull)]
    [InlineData(5, "  Something else went wrong.", LvmErrorKind.Failed)]
    public void Lvm_errors_are_classified_from_their_C_locale_text(int exitCode, string stderr, LvmErrorKind kind)
    {
        var e = new LvmException("lvcreate", exitCode, stderr);
        Assert.Equal(kind, e.Kind);
        Assert.DoesNotContain("WARNING: Activation disabled", e.Message, StringComparison.Ordinal);
    }
}

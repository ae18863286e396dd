using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Tests.Contracts;

/// <summary>The one WWID-to-device rule the agent and the controller share.</summary>
public class MultipathDeviceTests
{
    [Fact]
    public void A_wwid_names_its_map_and_the_map_names_its_wwid() =>
        Assert.Equal("35000c500a0000001", MultipathDevice.WwidOf(MultipathDevice.PathOf("35000c500a0000001")));

    [Theory]
    [InlineData("/dev/loop3")]
    [InlineData("/dev/sdb")]
    [InlineData("/dev/mapper")]
    public void Other_devices_have_no_wwid(string device) =>
        Assert.Equal(string.Empty, MultipathDevice.WwidOf(device));
}

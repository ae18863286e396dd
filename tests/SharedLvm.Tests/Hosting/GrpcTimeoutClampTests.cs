using SharedLvm.Hosting;

namespace SharedLvm.Tests.Hosting;

public class GrpcTimeoutClampTests
{
    [Theory]
    [InlineData("100m", 100 * TimeSpan.TicksPerMillisecond)]
    [InlineData("5S", 5 * TimeSpan.TicksPerSecond)]
    [InlineData("2M", 2 * TimeSpan.TicksPerMinute)]
    [InlineData("1H", TimeSpan.TicksPerHour)]
    [InlineData("250u", 250 * TimeSpan.TicksPerMicrosecond)]
    [InlineData("99999999n", 999999)]
    public void Parses_grpc_timeout(string value, long ticks)
    {
        Assert.True(GrpcTimeoutClamp.TryParse(value, out var timeout));
        Assert.Equal(ticks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("123456789S")]
    [InlineData("10x")]
    [InlineData("-5S")]
    [InlineData("1.5S")]
    public void Rejects_malformed_grpc_timeout(string value) =>
        Assert.False(GrpcTimeoutClamp.TryParse(value, out _));

    [Fact]
    public void The_largest_valid_timeout_is_beyond_the_clamp()
    {
        Assert.True(GrpcTimeoutClamp.TryParse("99999999H", out var longest));
        Assert.True(longest > GrpcTimeoutClamp.Longest);
        Assert.True(GrpcTimeoutClamp.TryParse("8759H", out var year));
        Assert.True(year <= GrpcTimeoutClamp.Longest);
    }
}

using System.Text.Json;
using SharedLvm.Cli;
using SharedLvm.Cli.Commands;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Cli;

public sealed class SlvmTests : IAsyncLifetime
{
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-cli-").FullName;
    private InProcessController _controller = null!;

    public async ValueTask InitializeAsync() => _controller = await InProcessController.StartAsync(_state);

    public async ValueTask DisposeAsync()
    {
        await _controller.DisposeAsync();
        Directory.Delete(_state, recursive: true);
    }

    [Theory]
    [InlineData("10G", 10UL << 30)]
    [InlineData("512M", 512UL << 20)]
    [InlineData("1.5T", 3UL << 39)]
    [InlineData("4KiB", 4096UL)]
    [InlineData("12345", 12345UL)]
    public void Parses_human_sizes(string text, ulong bytes) => Assert.Equal(bytes, Sizes.Parse(text));

    [Theory]
    [InlineData("ten")]
    [InlineData("-5G")]
    [InlineData("5X")]
    public void Rejects_non_sizes(string text) => Assert.Throws<FormatException>(() => Sizes.Parse(text));

    [Fact]
    public async Task Exit_code_is_the_grpc_status_and_stderr_names_it()
    {
        var (code, _, stderr) = await Slvm("volume", "get", new string('a', 26));
        Assert.Equal(5, code);
        Assert.StartsWith("slvm: NOT_FOUND: Volume aaaaaaaaaaaaaaaaaaaaaaaaaa does not exist.", stderr, StringComparison.Ordinal);

        (code, _, stderr) = await Slvm("pool", "create", "bad name", "--device", "/dev/loop0");
        Assert.Equal(3, code);
        Assert.Contains("INVALID_ARGUMENT", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_usage_exits_64_without_calling_anything()
    {
        var (code, _, stderr) = await Slvm("volume", "create", "pool", "name", "lots");
        Assert.Equal(Connection.UsageError, code);
        Assert.Contains("'lots' is not a size", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_output_is_the_proto3_mapping()
    {
        var (code, stdout, _) = await Slvm("pool", "list", "--json");
        Assert.Equal(0, code);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(JsonValueKind.Array, json.RootElement.GetProperty("pools").ValueKind);
    }

    [Fact]
    public async Task An_unreachable_controller_is_unavailable()
    {
        var (code, _, stderr) = await Slvm("--controller", "http://127.0.0.1:1", "pool", "list");
        Assert.Equal(14, code);
        Assert.Contains("UNAVAILABLE", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Controller_address_comes_from_flag_then_environment()
    {
        Assert.Equal(["http://10.1.2.3:7400"], Connection.ResolveControllers("10.1.2.3:7400"));
        Assert.Equal(["https://10.1.2.3:7400"], Connection.ResolveControllers("10.1.2.3:7400", tls: true));
        Assert.Equal(["http://a:7400", "http://b:7400"], Connection.ResolveControllers("a:7400, b:7400"));
        Assert.Throws<FormatException>(() => Connection.ResolveControllers("http://exa mple:1"));
    }

    private async Task<(int Code, string Stdout, string Stderr)> Slvm(params string[] args)
    {
        string[] full = args.Contains("--controller") ? args : ["--controller", _controller.Address.ToString(), .. args];
        return await Run(full);
    }

    /// <summary>slvm in-process with exactly these arguments: exit code, stdout, stderr.</summary>
    internal static async Task<(int Code, string Stdout, string Stderr)> Run(params string[] full)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var root = SlvmCommands.Build(stdout, stderr);
        var parse = root.Parse(full);
        var code = parse.Errors.Count > 0 ? Connection.UsageError : await parse.InvokeAsync();
        return (code, stdout.ToString(), stderr.ToString());
    }
}

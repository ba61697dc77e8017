using OnnxSlim.TestSupport;

namespace OnnxSlim.Calibration.Tests;

public sealed class TemporaryFileTests
{
    [Fact]
    public void A_spill_the_temporary_folder_cannot_hold_is_refused_before_it_is_written_with_the_sizes_and_TMPDIR()
    {
        var e = Assert.Throws<IOException>(() => TemporaryFile.EnsureRoom(761L << 20, "the recorded outputs", free: 200L << 20));
        Assert.StartsWith("the recorded outputs need 761 MiB in the temporary folder", e.Message);
        Assert.Contains("which has 200 MiB free; set TMPDIR to a folder with more room", e.Message);
        Assert.Contains(Path.GetTempPath(), e.Message);
    }

    [Fact]
    public void A_spill_that_fits_or_whose_room_the_system_does_not_report_goes_ahead()
    {
        TemporaryFile.EnsureRoom(200L << 20, "the recorded outputs", free: 200L << 20);
        TemporaryFile.EnsureRoom(long.MaxValue, "the recorded outputs", free: null);
    }

    [Fact]
    public void A_full_disk_names_the_temporary_folder_and_what_filled_it_and_other_errors_pass_unchanged()
    {
        var full = new IOException("No space left on device : '/tmp/x'", 28);
        var explained = TemporaryFile.Explain(full, "the cached activations");
        Assert.Equal($"the temporary folder {Path.GetTempPath()} ran out of room for the cached activations; set TMPDIR to a folder with more room", explained.Message);
        Assert.Same(full, explained.InnerException);

        var other = new IOException("Input/output error", 5);
        Assert.Same(other, TemporaryFile.Explain(other, "the cached activations"));
    }

    [Fact]
    public void A_temporary_folder_that_does_not_exist_is_named_with_TMPDIR()
    {
        string missing = Path.Combine(Fixtures.TempDir(), "gone");
        var e = Assert.Throws<IOException>(() => TemporaryFile.Create("recording", ".f32", missing));
        Assert.Equal($"the temporary folder {missing} does not exist; set TMPDIR to a folder that does", e.Message);
    }
}

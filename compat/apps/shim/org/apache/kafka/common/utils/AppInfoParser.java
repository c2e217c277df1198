// Shim for compat/connect_file.py. connect-file 4.4.0 (FileStreamSource/FileStreamSink) is not on
// Maven Central, so the scenario uses connect-file 4.3.1, whose connectors' version() calls
// org.apache.kafka.common.utils.AppInfoParser.getVersion(); kafka-clients 4.4 moved that class to
// org.apache.kafka.common.utils.internals. This is the only 4.4 class connect-file 4.3.1 misses
// (checked with javap over its classes); the shim forwards to the moved class, nothing else.
package org.apache.kafka.common.utils;

public final class AppInfoParser {
    private AppInfoParser() {}

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }

    public static String getCommitId() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getCommitId();
    }
}

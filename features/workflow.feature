Feature: Production workflow
  Names, formats, timecode and proxies as a production expects them.

  @C2C-WF-01 @operator @evidence-doc
  Scenario: Recording is triggered automatically by the camera and manually
    Given a paired device
    Then the operator confirms "Recording starts automatically on the camera's SDI/HDMI trigger and manually from the device"

  @C2C-WF-02 @evidence-doc
  Scenario: Uploaded media keeps its timecode
    Given a paired device
    When 1 "wav" file is captured
    And 1 "mov" file is captured
    Then every captured file arrives intact within 120 seconds
    And the uploaded files keep the timecode they were recorded with

  @C2C-WF-03 @evidence-doc
  Scenario: Filenames with spaces, unicode and duplicates are handled consistently
    Given a paired device
    When files named "A001 C002.jpg", "Café_ß_🎬.jpg" and "a001 c002.JPG" are captured
    Then every captured file arrives intact within 120 seconds
    And every uploaded name matches its captured name

  @C2C-WF-04 @evidence-doc
  Scenario: Proxies match their hero file
    Given a paired device that makes proxies
    When a "prores" hero file is recorded
    Then the device uploads a proxy of it within 180 seconds
    And the uploaded proxy matches its hero file in filename, timecode and metadata

  @C2C-WF-05 @evidence-doc
  Scenario: Proxies are LTE-optimised
    Given a paired device that makes proxies
    When a "prores" hero file is recorded
    Then the device uploads a proxy of it within 180 seconds
    And the uploaded proxy bitrate is between 1 and 12 Mbps

  @C2C-WF-06 @evidence-doc
  Scenario: Media uses standard codecs
    Given a paired device
    When 1 "mp4" file is captured
    And 1 "wav" file is captured
    Then every captured file arrives intact within 120 seconds
    And the uploaded media uses standard video and audio codecs

  @C2C-WF-07 @evidence-doc
  Scenario: One file of each format is uploaded
    Given a paired device
    When one file of each format "mov, mp4, cube, wav, dng, jpg, heic, tif" is captured
    Then every captured file arrives intact within 240 seconds

  @C2C-WF-08 @evidence-doc
  Scenario: A renamed project does not stop uploads
    Given a paired device
    When 2 "jpg" files are captured
    And the cloud renames the project to "Renamed mid-run"
    And 2 "jpg" files are captured
    Then every captured file arrives intact within 120 seconds
    And every file was uploaded to the paired project

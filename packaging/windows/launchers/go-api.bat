@echo off
rem GPT-SoVITS Studio: the HTTP API (upstream api_v2 compatible, plus /v1/audio/speech) on http://127.0.0.1:9880
rem Usage: go-api.bat --gpt GPT_weights_v2\NAME.ckpt --sovits SoVITS_weights_v2\NAME.pth [more options]
rem Relative paths are taken from this file's folder, so the folder may live anywhere.
setlocal
chcp 65001 >nul
pushd "%~dp0"
set "PATH=%~dp0runtime;%PATH%"
if "%~1"=="" goto usage
"%~dp0runtime\python.exe" -X utf8 -m app.api %*
set "STUDIO_EXIT=%ERRORLEVEL%"
goto end
:usage
echo Usage: go-api.bat --gpt GPT_weights_v2\NAME.ckpt --sovits SoVITS_weights_v2\NAME.pth [more options]
echo.
"%~dp0runtime\python.exe" -X utf8 -m app.api --help
set "STUDIO_EXIT=2"
:end
popd
if not "%STUDIO_EXIT%"=="0" pause
endlocal & exit /b %STUDIO_EXIT%
